"""Rule patterns (``chalicelib.rules``) against the aggregated event (``chalicelib.events``).

The patterns are matched with the local EventBridge matcher, so these tests pin down
which aggregated event reaches which target.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import rules
from chalicelib.aggregator import source_change
from chalicelib.config import Settings
from chalicelib.domain import FAILED, PASSED, TIMED_OUT, CheckResult, Order
from chalicelib.events import MAX_EVENT_REASON_CHARS, aggregated_detail, put_events_entry
from local.eventbridge import matches, validate

SETTINGS = Settings()
REQUIRED = SETTINGS.required_checks
AT = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def _order(statuses: dict[str, str], reasons: dict[str, str] | None = None) -> Order:
    reasons = reasons or {}
    return Order(
        "7",
        {
            name: CheckResult(name, status, AT, reasons.get(name))
            for name, status in statuses.items()
        },
    )


def _event(detail: dict[str, Any], settings: Settings = SETTINGS) -> dict[str, Any]:
    """The event EventBridge would deliver for one ``PutEvents`` entry."""
    entry = put_events_entry(settings, detail)
    return {
        "version": "0",
        "id": "1",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2026-01-31T12:00:00Z",
        "region": "us-east-1",
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


def _targets(
    detail: dict[str, Any], settings: Settings = SETTINGS, sent_with: Settings | None = None
) -> set[str]:
    """The targets (rules built from ``settings``) of the event sent with ``sent_with``."""
    event = _event(detail, sent_with or settings)
    found = set()
    if matches(rules.invoice_pattern(settings), event):
        found.add("invoice")
    if matches(rules.problem_pattern(settings), event):
        found.add("problem")
    return found


# --- patterns ------------------------------------------------------------------------


def test_patterns_are_valid_eventbridge_patterns() -> None:
    for pattern in (
        rules.invoice_pattern(SETTINGS),
        rules.problem_pattern(SETTINGS),
        rules.all_checks_present_pattern(SETTINGS),
    ):
        validate(pattern)
        validate(json.dumps(pattern))


def test_invoice_pattern_matches_the_status_the_policy_decided() -> None:
    # Issue 14: the aggregator decides by the completion policy; the rule follows it.
    assert rules.invoice_pattern(SETTINGS) == {
        "source": ["event-aggregator"],
        "detail-type": ["Order Checks Aggregated"],
        "detail": {"status": ["approved"]},
    }


def test_problem_pattern_matches_rejected_or_timed_out() -> None:
    assert rules.problem_pattern(SETTINGS)["detail"] == {"status": ["rejected", "timed-out"]}


def test_patterns_follow_source_detail_type_and_checks_from_settings() -> None:
    settings = Settings(event_source="shop", detail_type="Checked", required_checks=("A", "B", "C"))
    invoice = rules.invoice_pattern(settings)
    assert invoice["source"] == ["shop"]
    assert invoice["detail-type"] == ["Checked"]
    assert set(invoice["detail"]) == {"status"}
    assert rules.problem_pattern(settings)["source"] == ["shop"]
    assert set(rules.all_checks_present_pattern(settings)["detail"]) == {"A", "B", "C"}


# --- aggregated detail ---------------------------------------------------------------


def test_detail_has_one_leaf_per_reported_check_and_the_lists() -> None:
    order = _order({"In Stock": FAILED, "Account Check": PASSED}, {"In Stock": "sold out"})
    assert aggregated_detail(order, REQUIRED) == {
        "OrderID": "7",
        "status": "rejected",
        "Account Check": "passed",
        "In Stock": "failed",
        "failed": ["In Stock"],
        "missing": [],
        "reasons": {"In Stock": "sold out"},
        "truncated": [],
        "groups": {"required": {"passed": 1, "failed": 1, "remaining": 0}},
    }


def test_detail_of_a_pending_order_lists_missing_checks_and_has_no_leaf_for_them() -> None:
    detail = aggregated_detail(_order({"Account Check": PASSED}), REQUIRED)
    assert detail["status"] == "pending"
    assert detail["missing"] == ["In Stock"]
    assert "In Stock" not in detail


def test_detail_status_can_be_overridden_for_timeouts() -> None:
    detail = aggregated_detail(_order({"Account Check": PASSED}), REQUIRED, status=TIMED_OUT)
    assert detail["status"] == TIMED_OUT
    assert detail["missing"] == ["In Stock"]


def test_results_named_like_reserved_keys_never_overwrite_them() -> None:
    order = Order(
        "7",
        {
            "status": CheckResult("status", PASSED, AT),
            "OrderID": CheckResult("OrderID", PASSED, AT, "x"),
            "In Stock": CheckResult("In Stock", FAILED, AT),
        },
    )
    detail = aggregated_detail(order, REQUIRED)
    assert detail["OrderID"] == "7"
    assert detail["status"] == "rejected"
    assert detail["In Stock"] == "failed"


def test_entry_is_compact_json_that_keeps_unicode() -> None:
    order = _order({"In Stock": FAILED}, {"In Stock": "在庫切れ 🚚"})
    entry = put_events_entry(SETTINGS, aggregated_detail(order, REQUIRED))
    assert entry["Source"] == "event-aggregator"
    assert entry["DetailType"] == "Order Checks Aggregated"
    assert entry["EventBusName"] == "default"
    assert entry["Resources"] == []
    assert "在庫切れ 🚚" in entry["Detail"]
    assert ", " not in entry["Detail"] and ": " not in entry["Detail"]
    assert json.loads(entry["Detail"])["reasons"] == {"In Stock": "在庫切れ 🚚"}


def test_entry_goes_to_the_configured_bus() -> None:
    entry = put_events_entry(Settings(event_bus_name="orders"), {"OrderID": "7"})
    assert entry["EventBusName"] == "orders"


# --- which target an aggregated event reaches ----------------------------------------


@pytest.mark.parametrize(
    ("statuses", "targets"),
    [
        ({}, set()),
        ({"Account Check": PASSED}, set()),
        ({"Account Check": PASSED, "In Stock": PASSED}, {"invoice"}),
        ({"Account Check": FAILED}, {"problem"}),
        ({"Account Check": PASSED, "In Stock": FAILED}, {"problem"}),
        ({"Account Check": FAILED, "In Stock": FAILED}, {"problem"}),
    ],
)
def test_each_decision_reaches_exactly_its_target(
    statuses: dict[str, str], targets: set[str]
) -> None:
    assert _targets(aggregated_detail(_order(statuses), REQUIRED)) == targets


def test_timed_out_order_reaches_only_the_problem_path() -> None:
    detail = aggregated_detail(_order({"Account Check": PASSED}), REQUIRED, status=TIMED_OUT)
    assert _targets(detail) == {"problem"}


def test_extra_check_that_failed_does_not_reach_the_problem_path() -> None:
    order = _order({"Account Check": PASSED, "In Stock": PASSED, "Fraud Check": FAILED})
    assert _targets(aggregated_detail(order, REQUIRED)) == {"invoice"}


def test_the_invoice_rule_routes_on_the_status_alone() -> None:
    # The rule trusts the aggregator's decision (issue 14); the invoice handler re-reads
    # the order and invoices only what the policy approves (tests/functional).
    detail = {"OrderID": "7", "status": "approved", "Account Check": "passed"}
    assert _targets(detail) == {"invoice"}
    assert _targets({"OrderID": "7", "status": "pending"}) == set()


def test_events_from_another_source_or_detail_type_reach_nothing() -> None:
    detail = aggregated_detail(_order({"Account Check": PASSED, "In Stock": PASSED}), REQUIRED)
    assert _targets(detail) == {"invoice"}
    assert _targets(detail, sent_with=Settings(event_source="someone-else")) == set()
    assert _targets(detail, sent_with=Settings(detail_type="Other")) == set()


def test_reference_rule_matches_once_every_check_reported_whatever_the_result() -> None:
    pattern = rules.all_checks_present_pattern(SETTINGS)
    partial = aggregated_detail(_order({"Account Check": PASSED}), REQUIRED)
    complete = aggregated_detail(_order({"Account Check": PASSED, "In Stock": FAILED}), REQUIRED)
    assert not matches(pattern, _event(partial))
    assert matches(pattern, _event(complete))


def test_third_check_from_settings_must_pass_before_invoicing() -> None:
    settings = Settings(required_checks=("Account Check", "In Stock", "Fraud Check"))
    two = _order({"Account Check": PASSED, "In Stock": PASSED})
    three = _order({"Account Check": PASSED, "In Stock": PASSED, "Fraud Check": PASSED})
    fraud = _order({"Account Check": PASSED, "In Stock": PASSED, "Fraud Check": FAILED})
    required = settings.required_checks
    assert _targets(aggregated_detail(two, required), settings) == set()
    assert _targets(aggregated_detail(three, required), settings) == {"invoice"}
    assert _targets(aggregated_detail(fraud, required), settings) == {"problem"}


def test_a_long_reason_is_cut_in_the_event_and_marked_truncated() -> None:
    long_reason = "x" * (MAX_EVENT_REASON_CHARS + 1)
    results = {
        "In Stock": CheckResult("In Stock", FAILED, AT, reason=long_reason),
        "Account Check": CheckResult("Account Check", FAILED, AT, reason="short"),
    }
    detail = aggregated_detail(Order("7", results), ("Account Check", "In Stock"))
    assert detail["reasons"]["In Stock"] == "x" * MAX_EVENT_REASON_CHARS
    assert detail["reasons"]["Account Check"] == "short"
    assert detail["truncated"] == ["In Stock"]


@pytest.mark.parametrize(
    ("sort_key", "status", "kept"),
    [
        ("In Stock", "passed", True),
        ("#declaration", "declared", True),
        ("#order", None, False),
        ("In Stock", None, False),
    ],
)
def test_the_stream_filter_passes_results_and_declarations_the_aggregator_uses(
    sort_key: str, status: str | None, kept: bool
) -> None:
    keys = {"OrderID": {"S": "7"}, "EventName": {"S": sort_key}}
    image = {**keys, **({"Status": {"S": status}} if status else {})}
    record = {
        "eventName": "INSERT",
        "dynamodb": {"Keys": keys, "NewImage": image, "SequenceNumber": "1"},
    }
    pattern = rules.stream_filter_pattern()
    validate(json.dumps(pattern))
    assert matches(pattern, record) is kept
    assert (source_change(record, 0) is not None) is kept
