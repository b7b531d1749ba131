"""The whole pipeline in-process: HTTP → table → stream → aggregator → bus → targets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import clock, rules
from chalicelib.config import get_settings
from chalicelib.outcomes import LogNotifier
from local.eventbridge import matches
from local.pipeline import AwsClients, Pipeline
from tests.helpers import make_pipeline, post_result


def _order(client: Client, order_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.http.get(f"/orders/{order_id}").json_body
    return body


def test_order_7_with_both_checks_passed_is_invoiced_once(
    client: Client, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    notify = LogNotifier.order_sent

    def recording(self: LogNotifier, order_id: str, invoice: dict[str, Any], key: str) -> None:
        sent.append((order_id, invoice))
        notify(self, order_id, invoice, key)

    monkeypatch.setattr(LogNotifier, "order_sent", recording)
    post_result(client, "7", "Account Check", "passed")
    pipeline.run_until_idle()
    assert _order(client, "7")["status"] == "pending"
    post_result(client, "7", "In Stock", "passed")
    pipeline.run_until_idle()
    view = _order(client, "7")
    assert view["status"] == "invoiced"
    assert view["invoice"]["invoiceId"].startswith("INV-")
    assert "problem" not in view
    assert sent == [("7", view["invoice"])]


def test_order_7_with_a_failed_check_takes_the_problem_path_once(
    client: Client, pipeline: Pipeline
) -> None:
    post_result(client, "7", "Account Check", "failed", reason="credit limit exceeded")
    post_result(client, "7", "In Stock", "passed")
    pipeline.run_until_idle()
    view = _order(client, "7")
    assert view["status"] == "rejected"
    assert "invoice" not in view
    assert view["problem"]["failed"] == [
        {"check": "Account Check", "reason": "credit limit exceeded"}
    ]
    handled = [e for e in pipeline.delivered if pipeline.router.matching(e)]
    assert all(e["detail"]["status"] == "rejected" for e in handled)


def test_same_aggregated_event_delivered_twice_gives_one_invoice(
    client: Client, pipeline: Pipeline
) -> None:
    post_result(client, "7", "Account Check", "passed")
    post_result(client, "7", "In Stock", "passed")
    pipeline.run_until_idle()
    first = _order(client, "7")["invoice"]
    approved = [e for e in pipeline.delivered if e["detail"]["status"] == "approved"]
    assert len(approved) == 1
    for _ in range(2):
        client.lambda_.invoke("invoice_processing", approved[0])
    assert _order(client, "7")["invoice"] == first


def test_problem_event_delivered_twice_gives_one_problem_record(
    client: Client, pipeline: Pipeline
) -> None:
    post_result(client, "8", "In Stock", "failed", reason="sold out")
    pipeline.run_until_idle()
    first = _order(client, "8")["problem"]
    rejected = next(e for e in pipeline.delivered if e["detail"]["status"] == "rejected")
    client.lambda_.invoke("problem_handler", rejected)
    assert _order(client, "8")["problem"] == first


def test_aggregated_event_has_one_leaf_per_check(client: Client, pipeline: Pipeline) -> None:
    post_result(client, "7", "Account Check", "passed")
    post_result(client, "7", "In Stock", "failed", reason="sold out")
    pipeline.run_until_idle()
    detail = pipeline.delivered[-1]["detail"]
    assert detail["OrderID"] == "7"
    assert detail["Account Check"] == "passed"
    assert detail["In Stock"] == "failed"
    assert detail["status"] == "rejected"
    assert detail["reasons"] == {"In Stock": "sold out"}


def test_reference_rule_matches_exactly_when_both_events_are_present(
    client: Client, pipeline: Pipeline
) -> None:
    pattern = rules.all_checks_present_pattern(get_settings())
    post_result(client, "7", "Account Check", "passed")
    pipeline.run_until_idle()
    assert not matches(pattern, pipeline.delivered[-1])
    post_result(client, "7", "In Stock", "failed")
    pipeline.run_until_idle()
    assert matches(pattern, pipeline.delivered[-1])


def test_late_result_is_stored_and_shown_but_never_reopens_the_order(
    client: Client, pipeline: Pipeline
) -> None:
    post_result(client, "7", "Account Check", "passed")
    post_result(client, "7", "In Stock", "passed")
    pipeline.run_until_idle()
    invoice = _order(client, "7")["invoice"]
    delivered = len(pipeline.delivered)
    response = post_result(client, "7", "In Stock", "failed", reason="recount")
    assert response.status_code == 201
    pipeline.run_until_idle()
    view = _order(client, "7")
    assert view["status"] == "invoiced"
    assert view["invoice"] == invoice
    assert "problem" not in view
    assert view["events"]["In Stock"]["late"] is True
    assert len(pipeline.delivered) == delivered


def test_order_missing_a_check_times_out_once_with_the_missing_check_named(
    client: Client, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    post_result(client, "9", "Account Check", "passed")
    pipeline.run_until_idle()
    pipeline.run_schedules()
    pipeline.run_until_idle()
    assert _order(client, "9")["status"] == "pending"
    later = start + timedelta(seconds=get_settings().order_timeout_seconds + 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    pipeline.run_schedules()
    pipeline.run_until_idle()
    view = _order(client, "9")
    assert view["status"] == "timed-out"
    assert view["problem"]["missing"] == ["In Stock"]
    pipeline.run_schedules()
    pipeline.run_until_idle()
    assert _order(client, "9")["problem"] == view["problem"]
    timed_out = [e for e in pipeline.delivered if e["detail"]["status"] == "timed-out"]
    assert len(timed_out) == 1


def test_a_third_check_is_added_through_configuration_alone(
    load_app: Callable[..., Any], aws: AwsClients
) -> None:
    app = load_app(REQUIRED_CHECKS='["Account Check", "In Stock", "Fraud Check"]')
    pipeline = make_pipeline(app, aws)
    invoice_rule = next(r for r in pipeline.router.rules if r.name == "invoice_processing")
    # The rule routes on the policy's decision (issue 14); the third check is waited for.
    assert invoice_rule.pattern["detail"] == {"status": ["approved"]}
    with Client(app) as client:
        post_result(client, "7", "Account Check", "passed")
        post_result(client, "7", "In Stock", "passed")
        pipeline.run_until_idle()
        assert _order(client, "7")["status"] == "pending"
        assert _order(client, "7")["missing"] == ["Fraud Check"]
        assert post_result(client, "7", "Fraud Check", "passed").status_code == 201
        pipeline.run_until_idle()
        assert _order(client, "7")["status"] == "invoiced"
