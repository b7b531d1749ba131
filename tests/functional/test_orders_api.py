"""The HTTP API through Chalice's test client, against moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from local.pipeline import AwsClients
from tests.helpers import post_result, table_items

T1 = "2026-01-01T10:00:00Z"
T2 = "2026-01-01T11:00:00Z"


def test_first_result_is_recorded_with_201(client: Client) -> None:
    response = post_result(client, "7", "In Stock", "passed", occurredAt=T1)
    assert response.status_code == 201
    assert response.json_body["applied"] is True
    assert response.json_body["state"] == "recorded"


def test_duplicate_post_answers_200_and_writes_nothing(client: Client, aws: AwsClients) -> None:
    post_result(client, "7", "In Stock", "passed", occurredAt=T1)
    before = table_items(aws)
    response = post_result(client, "7", "In Stock", "passed", occurredAt=T1)
    assert response.status_code == 200
    assert response.json_body["applied"] is False
    assert response.json_body["state"] == "duplicate"
    assert table_items(aws) == before


def test_duplicate_post_without_time_is_not_written_again(client: Client) -> None:
    assert post_result(client, "7", "In Stock", "passed").status_code == 201
    response = post_result(client, "7", "In Stock", "passed")
    assert response.status_code == 200
    assert response.json_body["state"] == "duplicate"


def test_newer_result_replaces_the_stored_one(client: Client) -> None:
    post_result(client, "7", "In Stock", "passed", occurredAt=T1)
    response = post_result(client, "7", "In Stock", "failed", reason="sold out", occurredAt=T2)
    assert response.status_code == 201
    assert response.json_body["state"] == "changed"
    view = client.http.get("/orders/7").json_body
    assert view["events"]["In Stock"] == {
        "status": "failed",
        "reason": "sold out",
        "occurredAt": "2026-01-01T11:00:00.000000Z",
    }


def test_stale_result_never_overwrites_a_newer_one(client: Client) -> None:
    post_result(client, "7", "In Stock", "failed", reason="sold out", occurredAt=T2)
    response = post_result(client, "7", "In Stock", "passed", occurredAt=T1)
    assert response.status_code == 200
    assert response.json_body == {
        "orderId": "7",
        "name": "In Stock",
        "applied": False,
        "state": "stale",
        "stored": {
            "status": "failed",
            "reason": "sold out",
            "occurredAt": "2026-01-01T11:00:00.000000Z",
        },
    }
    assert client.http.get("/orders/7").json_body["events"]["In Stock"]["status"] == "failed"


def test_pending_order_view_lists_missing_checks(client: Client) -> None:
    post_result(client, "7", "Account Check", "passed", occurredAt=T1)
    view = client.http.get("/orders/7").json_body
    assert view["orderId"] == "7"
    assert view["status"] == "pending"
    assert view["missing"] == ["In Stock"]
    assert "invoice" not in view


def test_unknown_order_is_404(client: Client) -> None:
    response = client.http.get("/orders/nope")
    assert response.status_code == 404
    assert "nope" in response.json_body["error"]


def test_get_with_invalid_order_id_is_400(client: Client) -> None:
    response = client.http.get("/orders/bad%20id")
    assert response.status_code == 400
    assert response.json_body["field"] == "orderId"


def _raw_post(client: Client, order_id: str, body: bytes | str) -> Any:
    return client.http.post(
        f"/orders/{order_id}/events", headers={"Content-Type": "application/json"}, body=body
    )


BAD_BODIES: dict[str, tuple[bytes | str, str]] = {
    "not JSON": (b"{not json", "not valid JSON"),
    "empty body": (b"", "empty"),
    "JSON array": (b"[]", "JSON object"),
    "name not a string": (json.dumps({"name": 5, "status": "passed"}), "'name' must be a string"),
    "status not a string": (
        json.dumps({"name": "In Stock", "status": True}),
        "'status' must be one of",
    ),
    "name missing": (json.dumps({"status": "passed"}), "'name' is required"),
    "status missing": (json.dumps({"name": "In Stock"}), "'status' is required"),
    "unknown check": (
        json.dumps({"name": "Fraud Check", "status": "passed"}),
        "unknown check name",
    ),
    "unknown status": (
        json.dumps({"name": "In Stock", "status": "maybe"}),
        "'status' must be one of",
    ),
    "unknown field": (
        json.dumps({"name": "In Stock", "status": "passed", "admin": True}),
        "unknown field 'admin'",
    ),
    "reason too long": (
        json.dumps({"name": "In Stock", "status": "failed", "reason": "x" * 501}),
        "'reason' is longer than 500",
    ),
    "reason not a string": (
        json.dumps({"name": "In Stock", "status": "failed", "reason": {"a": 1}}),
        "'reason' must be a string",
    ),
    "control characters": (
        json.dumps({"name": "In Stock", "status": "failed", "reason": "a\u0000b"}),
        "control characters",
    ),
    "time without offset": (
        json.dumps({"name": "In Stock", "status": "passed", "occurredAt": "2026-01-01T10:00:00"}),
        "'occurredAt' must be an ISO-8601 time",
    ),
    "time not a time": (
        json.dumps({"name": "In Stock", "status": "passed", "occurredAt": "yesterday"}),
        "'occurredAt' must be an ISO-8601 time",
    ),
    "time in the future": (
        json.dumps({"name": "In Stock", "status": "passed", "occurredAt": "2999-01-01T00:00:00Z"}),
        "'occurredAt' is in the future",
    ),
    "deeply nested": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_body_gets_400_naming_the_problem_and_writes_nothing(
    client: Client, aws: AwsClients, case: str
) -> None:
    body, expected = BAD_BODIES[case]
    response = _raw_post(client, "7", body)
    assert response.status_code == 400
    assert expected in response.json_body["error"]
    assert table_items(aws) == []


def test_body_over_16_kib_gets_413_and_writes_nothing(client: Client, aws: AwsClients) -> None:
    body = json.dumps({"name": "In Stock", "status": "failed", "reason": "x" * 17000})
    response = _raw_post(client, "7", body)
    assert response.status_code == 413
    assert "limit is 16384" in response.json_body["error"]
    assert table_items(aws) == []


@pytest.mark.parametrize(
    "order_id", ["a" * 65, "semi;colon", "quote'", "%C3%A9t%C3%A9", "dollar$", "%0Anewline"]
)
def test_bad_order_id_gets_400_and_writes_nothing(
    client: Client, aws: AwsClients, order_id: str
) -> None:
    response = post_result(client, order_id, "In Stock", "passed")
    assert response.status_code == 400
    assert response.json_body["field"] == "orderId"
    assert table_items(aws) == []


def test_wrong_content_type_is_refused(client: Client, aws: AwsClients) -> None:
    response = client.http.post(
        "/orders/7/events", headers={"Content-Type": "text/plain"}, body="hello"
    )
    assert response.status_code == 415
    assert table_items(aws) == []
