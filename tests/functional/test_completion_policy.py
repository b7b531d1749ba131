"""Completion rules as configuration and data (issue 14), through the whole pipeline in
process: HTTP (Chalice's test client) → moto's table → stream → aggregator → bus → targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import clock, rules, table
from chalicelib.config import get_settings
from local.eventbridge import matches
from local.pipeline import AwsClients, Pipeline
from tests.helpers import TABLE, make_pipeline, post_result, table_items

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
APPROVERS = ["Approver 1", "Approver 2", "Approver 3"]
TWO_OF_THREE = json.dumps(
    {"groups": [{"name": "approvers", "atLeast": 2, "of": APPROVERS}]}, separators=(",", ":")
)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The app's clock, as a one-element list a test can move."""
    moment = [NOW]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    return moment


Setup = tuple[Client, Pipeline]


@pytest.fixture
def app_with(
    load_app: Callable[..., Any], aws: AwsClients, now: list[datetime]
) -> Iterator[Callable[..., Setup]]:
    """The app loaded with extra settings, its test client and its pipeline."""
    clients: list[Client] = []

    def make(**env: str) -> Setup:
        app = load_app(**env)
        client = Client(app, stage_name="local")
        clients.append(client)
        return client, make_pipeline(app, aws)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _declare(client: Client, order_id: str, checks: list[str], **extra: Any) -> Any:
    return client.http.put(
        f"/orders/{order_id}",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"checks": checks, **extra}),
    )


def _view(client: Client, order_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.http.get(f"/orders/{order_id}").json_body
    return body


def _order_items(aws: AwsClients, order_id: str) -> list[str]:
    return sorted(
        item[table.SORT_KEY]["S"]
        for item in table_items(aws)
        if item[table.PARTITION_KEY]["S"] == order_id
    )


# --- per-order checks ---------------------------------------------------------------


def test_an_order_declared_with_one_check_is_invoiced_on_that_one(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with()
    answer = _declare(client, "d1", ["Account Check"])
    assert answer.status_code == 201
    assert answer.json_body["declaration"]["checks"] == ["Account Check"]
    post_result(client, "d1", "Account Check", "passed")
    pipeline.run_until_idle()
    view = _view(client, "d1")
    assert view["status"] == "invoiced"
    assert view["expected"] == ["Account Check"]
    assert view["policy"]["declared"]["status"] == "approved"
    assert "In Stock" not in view["events"]


def test_an_order_declared_with_an_optional_check_waits_for_it(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with(OPTIONAL_CHECKS="Fraud Check")
    assert _declare(client, "d2", ["Account Check", "Fraud Check"]).status_code == 201
    post_result(client, "d2", "Account Check", "passed")
    post_result(client, "d2", "In Stock", "passed")
    pipeline.run_until_idle()
    view = _view(client, "d2")
    assert view["status"] == "pending"
    assert view["missing"] == ["Fraud Check"]
    assert view["policy"]["declared"]["remaining"] == ["Fraud Check"]
    post_result(client, "d2", "Fraud Check", "passed")
    pipeline.run_until_idle()
    assert _view(client, "d2")["status"] == "invoiced"


def test_an_optional_check_is_accepted_but_not_waited_for_without_a_declaration(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with(OPTIONAL_CHECKS="Analytics")
    assert post_result(client, "o1", "Analytics", "failed").status_code == 201
    post_result(client, "o1", "Account Check", "passed")
    post_result(client, "o1", "In Stock", "passed")
    pipeline.run_until_idle()
    view = _view(client, "o1")
    assert view["status"] == "invoiced"
    assert view["events"]["Analytics"]["status"] == "failed"
    assert post_result(client, "o1", "Unheard Of", "passed").status_code == 400


# --- k of n -------------------------------------------------------------------------


def test_two_of_three_is_approved_on_the_second_pass(app_with: Callable[..., Setup]) -> None:
    client, pipeline = app_with(
        REQUIRED_CHECKS=json.dumps(APPROVERS), COMPLETION_POLICY=TWO_OF_THREE
    )
    post_result(client, "k1", "Approver 1", "passed")
    post_result(client, "k1", "Approver 2", "failed", reason="no")
    pipeline.run_until_idle()
    assert _view(client, "k1")["status"] == "pending"
    post_result(client, "k1", "Approver 3", "passed")
    pipeline.run_until_idle()
    view = _view(client, "k1")
    assert view["status"] == "invoiced"
    last = pipeline.delivered[-1]["detail"]
    assert last["status"] == "approved"
    assert last["groups"] == {"approvers": {"passed": 2, "failed": 1, "remaining": 0}}


def test_two_of_three_is_rejected_on_the_second_fail(app_with: Callable[..., Setup]) -> None:
    client, pipeline = app_with(
        REQUIRED_CHECKS=json.dumps(APPROVERS), COMPLETION_POLICY=TWO_OF_THREE
    )
    post_result(client, "k2", "Approver 1", "failed", reason="no")
    pipeline.run_until_idle()
    assert _view(client, "k2")["status"] == "pending"
    post_result(client, "k2", "Approver 3", "failed", reason="also no")
    pipeline.run_until_idle()
    view = _view(client, "k2")
    assert view["status"] == "rejected"
    assert view["problem"]["groups"]["approvers"] == {
        "needed": 2,
        "passed": [],
        "missing": ["Approver 2"],
    }
    assert {f["check"] for f in view["problem"]["failed"]} == {"Approver 1", "Approver 3"}


# --- declarations that arrive after the results -------------------------------------


def test_a_declaration_after_the_results_decides_a_pending_order(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with()
    post_result(client, "late1", "Account Check", "passed")
    pipeline.run_until_idle()
    assert _view(client, "late1")["status"] == "pending"
    # No result follows: the declaration's own stream record re-aggregates the order.
    assert _declare(client, "late1", ["Account Check"]).status_code == 201
    pipeline.run_until_idle()
    assert _view(client, "late1")["status"] == "invoiced"


def test_a_declaration_after_the_order_was_decided_on_the_defaults_is_a_409(
    app_with: Callable[..., Setup], aws: AwsClients
) -> None:
    client, pipeline = app_with()
    post_result(client, "late2", "Account Check", "passed")
    post_result(client, "late2", "In Stock", "passed")
    pipeline.run_until_idle()
    answer = _declare(client, "late2", ["Account Check"])
    assert answer.status_code == 409
    assert answer.json_body["status"] == "invoiced"
    assert "already invoiced" in answer.json_body["error"]
    view = _view(client, "late2")
    assert view["status"] == "invoiced"
    assert "declaration" not in view
    assert view["policy"]["required"]["status"] == "approved"
    assert table.DECLARATION_RECORD not in _order_items(aws, "late2")


def test_with_require_declaration_an_order_waits_for_its_declaration(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with(REQUIRE_DECLARATION="true")
    post_result(client, "r1", "Account Check", "passed")
    post_result(client, "r1", "In Stock", "failed", reason="sold out")
    pipeline.run_until_idle()
    view = _view(client, "r1")
    assert view["status"] == "pending"
    assert view["awaitingDeclaration"] is True
    assert not [e for e in pipeline.delivered if pipeline.router.matching(e)]
    assert _declare(client, "r1", ["Account Check"]).status_code == 201
    pipeline.run_until_idle()
    view = _view(client, "r1")
    assert view["status"] == "invoiced"
    assert "awaitingDeclaration" not in view


def test_with_require_declaration_an_undeclared_order_times_out(
    app_with: Callable[..., Setup], now: list[datetime]
) -> None:
    client, pipeline = app_with(REQUIRE_DECLARATION="true")
    post_result(client, "r2", "Account Check", "passed")
    post_result(client, "r2", "In Stock", "passed")
    pipeline.run_until_idle()
    now[0] = NOW + timedelta(seconds=get_settings().order_timeout_seconds)
    pipeline.run_schedules()
    pipeline.run_until_idle()
    view = _view(client, "r2")
    assert view["status"] == "timed-out"
    assert view["problem"]["declarationMissing"] is True


# --- the declaration's own rules ----------------------------------------------------


def test_the_same_declaration_again_is_a_200_and_a_conflicting_one_a_409(
    app_with: Callable[..., Setup], aws: AwsClients
) -> None:
    client, _ = app_with()
    deadline = "2026-01-31T13:00:00Z"
    assert (
        _declare(client, "c1", ["Account Check", "In Stock"], deadline=deadline).status_code == 201
    )
    again = _declare(
        client, "c1", ["In Stock", "Account Check"], deadline="2026-01-31T14:00:00+01:00"
    )
    assert again.status_code == 200
    assert again.json_body["state"] == "duplicate"
    conflict = _declare(client, "c1", ["Account Check"])
    assert conflict.status_code == 409
    assert conflict.json_body["declaration"]["checks"] == ["Account Check", "In Stock"]
    assert _declare(client, "c1", ["Account Check", "In Stock"]).status_code == 409
    assert _view(client, "c1")["declaration"]["checks"] == ["Account Check", "In Stock"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"checks": ["Fraud Check"]}, "checks"),
        ({"checks": []}, "checks"),
        ({"checks": "Account Check"}, "checks"),
        ({"checks": ["In Stock", "In Stock"]}, "checks"),
        ({}, "checks"),
        ({"checks": ["In Stock"], "deadline": "tomorrow"}, "deadline"),
        ({"checks": ["In Stock"], "deadline": "2026-01-31T11:00:00Z"}, "deadline"),
        ({"checks": ["In Stock"], "extra": 1}, "extra"),
    ],
)
def test_a_bad_declaration_is_a_400_naming_the_problem_and_stores_nothing(
    app_with: Callable[..., Setup], aws: AwsClients, body: dict[str, Any], field: str
) -> None:
    client, _ = app_with()
    answer = client.http.put(
        "/orders/b1", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    assert answer.status_code == 400
    assert answer.json_body["field"] == field
    assert answer.json_body["error"]
    assert _order_items(aws, "b1") == []


def test_a_direct_writer_declares_with_the_documented_item(
    app_with: Callable[..., Setup], aws: AwsClients
) -> None:
    client, pipeline = app_with()
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "OrderID": {"S": "w1"},
            "EventName": {"S": "#declaration"},
            "Status": {"S": "declared"},
            "Checks": {"L": [{"S": "In Stock"}]},
        },
        ConditionExpression="attribute_not_exists(OrderID)",
    )
    post_result(client, "w1", "In Stock", "passed")
    pipeline.run_until_idle()
    assert _view(client, "w1")["status"] == "invoiced"
    assert _declare(client, "w1", ["Account Check"]).status_code == 409


def test_an_approved_event_the_policy_does_not_back_invoices_nothing(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with()
    post_result(client, "f1", "Account Check", "passed")
    pipeline.run_until_idle()
    forged = dict(pipeline.delivered[-1])
    forged["detail"] = {**forged["detail"], "status": "approved"}
    assert pipeline.router.matching(forged)
    client.lambda_.invoke("invoice_processing", forged)
    assert _view(client, "f1")["status"] == "pending"


# --- deadlines ----------------------------------------------------------------------


def test_a_per_order_deadline_times_the_order_out(
    app_with: Callable[..., Setup], now: list[datetime]
) -> None:
    client, pipeline = app_with()
    deadline = NOW + timedelta(seconds=60)
    answer = _declare(client, "t1", ["Account Check", "In Stock"], deadline=deadline.isoformat())
    assert answer.status_code == 201
    assert _view(client, "t1")["deadline"] == "2026-01-31T12:01:00.000000Z"
    post_result(client, "t1", "Account Check", "passed")
    pipeline.run_until_idle()
    now[0] = NOW + timedelta(seconds=59)
    pipeline.run_schedules()
    pipeline.run_until_idle()
    assert _view(client, "t1")["status"] == "pending"
    now[0] = deadline
    pipeline.run_schedules()
    pipeline.run_until_idle()
    view = _view(client, "t1")
    assert view["status"] == "timed-out"
    assert view["problem"]["groups"] == {
        "declared": {"needed": 2, "passed": ["Account Check"], "missing": ["In Stock"]}
    }


def test_a_deadline_declared_after_the_first_result_replaces_the_default_one(
    app_with: Callable[..., Setup], now: list[datetime]
) -> None:
    client, pipeline = app_with()
    post_result(client, "t2", "Account Check", "passed")
    pipeline.run_until_idle()
    assert _view(client, "t2")["deadline"] == "2026-01-31T12:15:00.000000Z"
    deadline = NOW + timedelta(hours=2)
    _declare(client, "t2", ["Account Check", "In Stock"], deadline=deadline.isoformat())
    pipeline.run_until_idle()
    assert _view(client, "t2")["deadline"] == "2026-01-31T14:00:00.000000Z"
    now[0] = NOW + timedelta(hours=1)
    pipeline.run_schedules()
    pipeline.run_until_idle()
    assert _view(client, "t2")["status"] == "pending"
    now[0] = deadline
    pipeline.run_schedules()
    pipeline.run_until_idle()
    assert _view(client, "t2")["status"] == "timed-out"


def test_a_declared_order_with_a_deadline_and_no_result_times_out(
    app_with: Callable[..., Setup], now: list[datetime]
) -> None:
    client, pipeline = app_with()
    _declare(client, "t3", ["In Stock"], deadline=(NOW + timedelta(minutes=5)).isoformat())
    pipeline.run_until_idle()
    now[0] = NOW + timedelta(minutes=5)
    pipeline.run_schedules()
    pipeline.run_until_idle()
    view = _view(client, "t3")
    assert view["status"] == "timed-out"
    assert view["problem"]["missing"] == ["In Stock"]


# --- the default policy is the app as it was ----------------------------------------


def test_the_reference_rule_still_matches_exactly_when_the_default_checks_are_in(
    app_with: Callable[..., Setup],
) -> None:
    client, pipeline = app_with()
    pattern = rules.all_checks_present_pattern(get_settings())
    post_result(client, "ref", "Account Check", "passed")
    pipeline.run_until_idle()
    assert not matches(pattern, pipeline.delivered[-1])
    assert pipeline.delivered[-1]["detail"]["groups"] == {
        "required": {"passed": 1, "failed": 0, "remaining": 1}
    }
    post_result(client, "ref", "In Stock", "passed")
    pipeline.run_until_idle()
    assert matches(pattern, pipeline.delivered[-1])


def test_an_unreadable_declaration_parks_the_order_instead_of_using_the_defaults(
    app_with: Callable[..., Setup], aws: AwsClients
) -> None:
    client, pipeline = app_with()
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "OrderID": {"S": "w2"},
            "EventName": {"S": "#declaration"},
            "Status": {"S": "declared"},
            "Checks": {"N": "3"},
        },
    )
    post_result(client, "w2", "Account Check", "passed")
    post_result(client, "w2", "In Stock", "passed")
    pipeline.run_until_idle()
    view = _view(client, "w2")
    assert view["status"] != "invoiced"
    assert view["deadLettered"] == "corrupt-item"
    assert view["corrupt"] == ["declaration: Checks must be a non-empty list of check names"]
    refused = _declare(client, "w2", ["In Stock"])
    assert refused.status_code == 409
    assert "cannot be read" in refused.json_body["error"]
