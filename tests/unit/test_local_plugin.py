"""Hop lines: the runtime's generic line, and this app's plug-in wording (local_plugin)."""

from __future__ import annotations

from typing import Any

from local.plugins import Hop, HopPrinter
from local_plugin import describe_hop

EVENT = {
    "source": "event-aggregator",
    "detail-type": "x",
    "detail": {"OrderID": "7", "status": "approved"},
}
RECORD = {
    "eventName": "INSERT",
    "dynamodb": {
        "Keys": {"OrderID": {"S": "7"}, "EventName": {"S": "In Stock"}},
        "NewImage": {"Status": {"S": "passed"}},
    },
}


def test_the_generic_line_names_source_function_record_count_and_result() -> None:
    assert Hop("greeter", "eventbridge", 1, "matched").generic_line() == (
        "[eventbridge] greeter (1 record) → matched"
    )
    assert Hop("agg", "dynamodb", 3, "failed", detail="boom").generic_line() == (
        "[dynamodb] agg (3 records) → failed: boom"
    )
    assert (
        Hop("", "eventbridge", 1, "received").generic_line() == "[eventbridge] 1 record → received"
    )


def test_the_generic_line_shortens_a_long_detail() -> None:
    line = Hop("f", "lambda", 1, "ok", detail="x" * 5000).generic_line()
    assert len(line) < 400 and line.endswith("…")


def test_the_printer_uses_the_plugins_line_else_the_generic_one() -> None:
    lines: list[str] = []

    def describe(hop: Hop) -> str | None:
        return "custom" if hop.function == "mine" else None

    printer = HopPrinter(lines.append, describe)
    printer(Hop("mine", "lambda", 1, "ok"))
    printer(Hop("other", "lambda", 1, "ok"))
    printer("a note")
    assert lines == ["custom", "[lambda] other (1 record) → ok", "a note"]


def test_a_plugin_that_raises_is_reported_once_and_generic_lines_follow() -> None:
    lines: list[str] = []

    def describe(hop: Any) -> str:
        raise KeyError("oops")

    printer = HopPrinter(lines.append, describe)
    printer(Hop("f", "lambda", 1, "ok"))
    printer(Hop("g", "lambda", 1, "ok"))
    assert lines[0].startswith("plug-in describe_hop failed")
    assert lines[1:] == ["[lambda] f (1 record) → ok", "[lambda] g (1 record) → ok"]


def test_this_apps_plugin_words_bus_events_by_order() -> None:
    assert describe_hop(Hop("", "eventbridge", 1, "received", EVENT)) == (
        "[order 7] aggregated event: status=approved"
    )
    assert describe_hop(Hop("invoice_processing", "eventbridge", 1, "matched", EVENT)) == (
        "[order 7] rule matched → invoice_processing"
    )
    assert describe_hop(Hop("invoice_processing", "eventbridge", 1, "ok", EVENT, "done")) == (
        "[order 7] handler done: done"
    )
    assert describe_hop(Hop("p", "eventbridge", 1, "failed", EVENT, "E: x")) == (
        "[order 7] handler failed: E: x"
    )


def test_this_apps_plugin_words_stream_records_and_schedules() -> None:
    assert describe_hop(Hop("aggregator", "dynamodb", 1, "received", RECORD)) == (
        "[order 7] source event INSERT In Stock = passed"
    )
    assert describe_hop(Hop("aggregator", "dynamodb", 1, "sent to the failure queue", RECORD)) == (
        "[order 7] source event INSERT In Stock = passed: sent to the failure queue"
    )
    assert describe_hop(Hop("timeout_sweep", "schedule", 1, "ok", {}, "{'due': 0}")) == (
        "schedule → timeout_sweep: {'due': 0}"
    )


def test_this_apps_plugin_leaves_other_hops_to_the_generic_line() -> None:
    assert describe_hop(Hop("hello", "lambda", 1, "ok", {"name": "x"})) is None
    assert describe_hop(Hop("aggregator", "dynamodb", 5, "ok")) is None
