"""The operator's views, from stored items alone: timeline, waits, problems, rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from chalicelib.domain import format_time
from ops import queues, render, schema
from ops.commands import parse_duration
from ops.story import order_story, render_story

CHECKS = ("Account Check", "In Stock")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def result(
    name: str, status: str, occurred: float, recorded: float | None = None, **extra: str
) -> dict[str, Any]:
    item = {
        "OrderID": "7",
        "EventName": name,
        "Status": status,
        "OccurredAt": at(occurred),
        "Revision": f"{at(occurred)}|x",
        "Digest": "x",
        **extra,
    }
    if recorded is not None:
        item["RecordedAt"] = at(recorded)
    return item


def record(**attributes: str) -> dict[str, Any]:
    return {"OrderID": "7", "EventName": "#order", **attributes}


def invoice(seconds: float) -> str:
    return json.dumps({"invoiceId": "INV-1", "issuedAt": at(seconds)})


def story(items: list[dict[str, Any]], now: float = 1000) -> dict[str, Any]:
    view = order_story("7", items, CHECKS, T0 + timedelta(seconds=now))
    jsonschema.validate(view, schema.INSPECT)
    return view


def test_timeline_runs_oldest_first_across_results_record_and_outcome() -> None:
    view = story(
        [
            record(
                FirstSeenAt=at(3),
                Outcome="invoiced",
                OutcomeAt=at(5),
                Invoice=invoice(5),
                NotifiedAt=at(6),
            ),
            result("In Stock", "passed", 2),
            result("Account Check", "passed", 1),
        ]
    )
    assert [e["event"] for e in view["timeline"]] == [
        "check-result",
        "check-result",
        "opened",
        "outcome",
        "customer-told",
    ]
    assert [e.get("check") for e in view["timeline"][:2]] == ["Account Check", "In Stock"]
    assert view["status"] == "invoiced"
    assert view["notification"] == {"state": "told", "notifiedAt": at(6), "leaseUntil": None}
    assert view["waitingFor"] == []


def test_a_result_stored_after_the_outcome_is_late_with_its_reason_and_times() -> None:
    view = story(
        [
            record(
                FirstSeenAt=at(3),
                Outcome="invoiced",
                OutcomeAt=at(5),
                Invoice=invoice(5),
                NotifiedAt=at(6),
            ),
            result("Account Check", "passed", 1),
            result("In Stock", "failed", 4, recorded=9, Reason="recount"),
        ]
    )
    late = view["timeline"][-1]
    assert late == {
        "at": at(9),
        "event": "check-result",
        "summary": "In Stock = failed (late)",
        "check": "In Stock",
        "status": "failed",
        "occurredAt": at(4),
        "recordedAt": at(9),
        "reason": "recount",
        "late": True,
    }
    assert view["status"] == "invoiced"
    (line,) = [line for line in render_story(view) if "In Stock = failed" in line]
    assert line.endswith("LATE") and "occurred " + at(4) in line


def test_a_pending_order_waits_for_its_missing_check_then_for_the_sweep() -> None:
    items = [
        record(FirstSeenAt=at(1), Deadline=at(61), PendingShard="pending-0"),
        result("Account Check", "passed", 0),
    ]
    before = story(items, now=30)
    assert before["status"] == "pending"
    assert before["deadline"] == at(61) and before["due"] is False
    assert before["waitingFor"] == [{"step": "check", "detail": "In Stock"}]
    after = story(items, now=61)
    assert after["due"] is True
    assert after["waitingFor"][-1]["step"] == "timeout"
    assert after["timeline"][-1]["event"] == "deadline"


def test_an_approved_order_without_an_order_record_waits_for_invoice_processing() -> None:
    # Undecided and just-decided orders have no order record (deadline buckets list them).
    view = story([result("Account Check", "passed", 0), result("In Stock", "passed", 1)])
    assert view["status"] == "approved"
    assert [w["step"] for w in view["waitingFor"]] == ["invoice"]


def test_a_rejected_order_shows_its_problem() -> None:
    problem = {
        "reason": "rejected",
        "failed": [{"check": "In Stock", "reason": "sold out"}],
        "missing": [],
        "recordedAt": at(5),
    }
    view = story(
        [
            record(
                FirstSeenAt=at(3), Outcome="rejected", OutcomeAt=at(5), Problem=json.dumps(problem)
            ),
            result("Account Check", "passed", 1),
            result("In Stock", "failed", 2, Reason="sold out"),
        ]
    )
    assert view["outcome"] == {"kind": "rejected", "at": at(5), "invoice": None, "problem": problem}
    assert view["notification"] is None
    assert any("failed: In Stock (sold out)" in line for line in render_story(view))


def test_an_invoiced_order_not_told_shows_its_claim_and_waits_for_the_notification() -> None:
    items = [
        record(Outcome="invoiced", OutcomeAt=at(5), Invoice=invoice(5), NotifyLeaseUntil=at(125)),
        result("Account Check", "passed", 1),
        result("In Stock", "passed", 2),
    ]
    assert story(items, now=60)["notification"]["state"] == "claimed"
    expired = story(items, now=200)
    assert expired["notification"] == {
        "state": "lease-expired",
        "notifiedAt": None,
        "leaseUntil": at(125),
    }
    assert expired["waitingFor"] == [
        {"step": "notification", "detail": "the customer is not told yet"}
    ]


def test_a_corrupt_record_and_a_foreign_item_are_named_not_raised() -> None:
    view = story(
        [
            record(Deadline="not a time"),
            {"OrderID": "7", "EventName": "Weird", "Status": "maybe"},
            result("In Stock", "passed", 1),
            {
                "OrderID": "7",
                "EventName": "#dead-letter",
                "Fault": "corrupt-item",
                "Reason": "order record: Deadline 'not a time' is not a time",
                "ParkedAt": at(2),
            },
        ]
    )
    assert view["status"] == "unknown"
    assert view["recordCorrupt"] is True
    assert view["problems"][0] == "order record: Deadline 'not a time' is not a time"
    assert view["problems"][1].startswith("item 'Weird': not a source event item")
    assert view["deadLetter"]["fault"] == "corrupt-item"
    assert view["waitingFor"][0]["step"] == "operator"
    assert [e["event"] for e in view["timeline"]] == ["check-result", "dead-lettered"]
    lines = render_story(view)
    assert "cannot read:  order record: Deadline 'not a time' is not a time" in lines


def test_an_unreadable_first_seen_time_is_a_problem() -> None:
    view = story([record(FirstSeenAt="yesterday"), result("In Stock", "passed", 1)])
    assert view["problems"] == ["order record: FirstSeenAt 'yesterday' is not a time"]
    assert view["recordCorrupt"] is False


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)]
)
def test_durations_are_read(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "1x", "1h 30m", "-5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def _never(span: Any) -> list[str]:
    raise AssertionError("not a stream range")


def test_a_lambda_destination_record_resolves_to_its_order() -> None:
    body = json.dumps(
        {"requestContext": {}, "requestPayload": {"detail": {"OrderID": "9", "status": "approved"}}}
    )
    found = queues.resolve(body, _never)
    assert (found.kind, found.order_ids, found.resolved) == ("lambda-destination", ["9"], True)


def test_a_rule_dlq_event_resolves_to_its_order() -> None:
    found = queues.resolve(json.dumps({"detail": {"OrderID": "8"}}), _never)
    assert (found.kind, found.order_ids) == ("event", ["8"])


def test_a_message_that_is_not_json_is_named_unresolved() -> None:
    found = queues.resolve("hello", _never)
    assert (found.kind, found.resolved, found.note) == (
        "unknown",
        False,
        "not JSON; cannot tell which order",
    )


STREAM_MESSAGE = json.dumps(
    {
        "DDBStreamBatchInfo": {
            "shardId": "shard-1",
            "startSequenceNumber": "100",
            "endSequenceNumber": "200",
            "streamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/s",
        }
    }
)


def test_a_stream_range_resolves_through_the_stream() -> None:
    seen = []

    def orders_in(span: Any) -> list[str]:
        seen.append((span.shard_id, span.start, span.end))
        return ["1", "2"]

    found = queues.resolve(STREAM_MESSAGE, orders_in)
    assert (found.kind, found.order_ids, found.resolved) == ("stream-range", ["1", "2"], True)
    assert seen == [("shard-1", "100", "200")]


def test_a_range_the_stream_no_longer_holds_says_so() -> None:
    def trimmed(span: Any) -> list[str]:
        raise ClientError(
            {"Error": {"Code": "TrimmedDataAccessException", "Message": "x"}}, "GetShardIterator"
        )

    found = queues.resolve(STREAM_MESSAGE, trimmed)
    assert found.resolved is False
    assert found.note is not None and "no longer holds this range" in found.note
    assert found.span is not None and found.span.shard_id == "shard-1"


def test_pending_lines_show_each_order_with_what_it_waits_for() -> None:
    view = story(
        [record(FirstSeenAt=at(1), Deadline=at(61)), result("Account Check", "passed", 0)], now=70
    )
    entry = render.pending_entry(view, [record(FirstSeenAt=at(1))])
    data = {
        "command": "pending",
        "now": at(70),
        "due": False,
        "olderThanSeconds": None,
        "shards": ["pending-0"],
        "orders": [entry],
        "truncated": False,
    }
    jsonschema.validate(data, schema.PENDING)
    lines = render.pending_lines(data)
    assert lines[0] == "1 undecided order(s) in pending-0"
    assert f"{at(61)} !" in lines[2] and "check: In Stock" in lines[2]


def test_a_lost_stream_range_record_waits_for_the_operator_not_a_redrive() -> None:
    label = "#stream-range/shard-1/100-200"
    view = order_story(
        label,
        [
            {
                "OrderID": label,
                "EventName": "#dead-letter",
                "Fault": "stream-range-lost",
                "Reason": "the stream no longer holds shard-1 100..200",
                "ParkedAt": at(5),
            }
        ],
        CHECKS,
        T0,
    )
    jsonschema.validate(view, schema.INSPECT)
    assert view["waitingFor"] == [
        {
            "step": "operator",
            "detail": "a stream range the stream no longer holds; its orders are unknown",
        }
    ]
    assert view["deadLetter"]["fault"] == "stream-range-lost"
