"""``order_from_items``: an order built from its items never raises; what cannot be read
is named, and a corrupt order record is told apart from a foreign item."""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.domain import INVOICED, PASSED, CheckResult, parse_time
from chalicelib.store import order_from_items, result_item

AT = parse_time("2026-01-31T12:00:00Z")


def _result(name: str = "In Stock") -> dict[str, Any]:
    return result_item("7", CheckResult(name, PASSED, AT))


def _record(**attributes: str) -> dict[str, Any]:
    return {table.PARTITION_KEY: "7", table.SORT_KEY: table.ORDER_RECORD, **attributes}


def test_a_readable_order_has_no_problems() -> None:
    order = order_from_items(
        "7", [_result(), _record(Deadline="2026-01-31T12:15:00.000000Z", NotifiedAt="x")]
    )
    assert order.problems == ()
    assert not order.record_corrupt
    assert order.deadline == parse_time("2026-01-31T12:15:00Z")
    assert order.notified
    assert list(order.results) == ["In Stock"]


def test_a_corrupt_deadline_marks_the_record_corrupt_and_keeps_the_results() -> None:
    order = order_from_items("7", [_result(), _record(Deadline="not-a-time")])
    assert order.record_corrupt
    assert order.problems == ("order record: Deadline 'not-a-time' is not a time",)
    assert list(order.results) == ["In Stock"]
    assert order.deadline is None and order.outcome is None


def test_an_unknown_outcome_or_an_unreadable_invoice_is_corrupt() -> None:
    unknown = order_from_items("7", [_record(Outcome="shipped")])
    assert unknown.record_corrupt and "is not an outcome" in unknown.problems[0]
    broken = order_from_items(
        "7", [_record(Outcome=INVOICED, OutcomeAt="2026-01-31T12:00:00Z", Invoice="{")]
    )
    assert broken.record_corrupt and "the outcome cannot be read" in broken.problems[0]


def test_a_foreign_item_is_named_but_the_order_stays_readable() -> None:
    foreign = {table.PARTITION_KEY: "7", table.SORT_KEY: "Fraud Check", "Status": "maybe"}
    order = order_from_items("7", [_result(), foreign])
    assert not order.record_corrupt
    assert len(order.problems) == 1 and order.problems[0].startswith("item 'Fraud Check'")
    assert list(order.results) == ["In Stock"]


def test_a_dead_letter_record_names_its_fault() -> None:
    parked = {table.PARTITION_KEY: "7", table.SORT_KEY: table.DEAD_LETTER_RECORD, "Fault": "x"}
    assert order_from_items("7", [_result(), parked]).parked == "x"
