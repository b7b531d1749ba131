"""The "Reliability and security" guarantees, proved end to end on moto.

Every test drives the real app (HTTP API, stream handler, targets, schedule) through the
in-process pipeline, with faults injected at the boto3 boundary of the app's own clients
(:mod:`tests.reliability.faults`) and ``chalicelib.clock.now`` set by the test.

1. timeouts for missing checks        4. faults survived
2. late events                         5. hostile input
3. exactly-once outcomes               6. authentication
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.app import IAMAuthorizer
from chalice.deploy.swagger import SwaggerGenerator

from chalicelib import table
from chalicelib.config import get_settings
from chalicelib.domain import format_time
from local.pipeline import AwsClients
from tests.helpers import TABLE, table_items
from tests.reliability.faults import (
    THROTTLING,
    Clock,
    Harness,
    Ledger,
    app_log,
    closing,
    entry_for_order,
    entry_with_status,
    for_order,
    harness,
    no_backoff,
    on_buckets,
    on_index,
    order_items,
    order_of,
    outcome_records,
    shared_models,
)

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
THREE_CHECKS = '["Account Check", "In Stock", "Fraud Check"]'
CHALICE_CONFIG = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"


def _timeout() -> timedelta:
    return timedelta(seconds=get_settings().order_timeout_seconds)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No real waiting in publisher or SDK retries; the publisher's sleeps are recorded."""
    shared_models(monkeypatch)
    return no_backoff(monkeypatch)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(START).install(monkeypatch)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    return Ledger().install(monkeypatch)


@pytest.fixture
def h(load_app: Callable[..., Any], aws: AwsClients, clock: Clock) -> Iterator[Harness]:
    with harness(load_app, aws) as built:
        yield built


def _stream_attempts(h: Harness) -> int:
    """The aggregator mapping's attempts per batch: 1 + MaximumRetryAttempts (template)."""
    return h.pipeline.settings.streams["aggregator"].maximum_retry_attempts + 1


def _approve(h: Harness, *order_ids: str) -> None:
    for order_id in order_ids:
        assert h.post(order_id, "Account Check", "passed").status_code == 201
        assert h.post(order_id, "In Stock", "passed").status_code == 201


def _listed(aws: AwsClients) -> set[str]:
    """Every order some deadline bucket lists (a Query per bucket partition)."""
    listed: set[str] = set()
    for number in range(get_settings().pending_shards):
        page = aws.dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="OrderID = :pk",
            ExpressionAttributeValues={":pk": {"S": table.bucket_partition(f"pending-{number}")}},
        )
        for item in page.get("Items", []):
            listed.update(item[table.BUCKET_ORDERS]["M"])
    return listed


def _failed_orders(h: Harness) -> list[str]:
    """Orders with records in the discarded batches (each once: Lambda discards whole
    batches, which may hold several records of one order). The app's own deadline
    buckets are not orders (this harness has no stream filter; the deployed one drops
    their records before the aggregator, rules.stream_filter_pattern)."""
    orders = [e["record"]["dynamodb"]["Keys"]["OrderID"]["S"] for e in h.pipeline.failures.entries]
    return [o for o in dict.fromkeys(orders) if not o.startswith(table.DEADLINE_BUCKETS)]


# --- 1. timeouts for missing checks --------------------------------------------------


def test_timeout_of_missing_checks_happens_exactly_once_and_names_them(
    load_app: Callable[..., Any], aws: AwsClients, clock: Clock, ledger: Ledger
) -> None:
    with harness(load_app, aws, REQUIRED_CHECKS=THREE_CHECKS) as h:
        h.post("9", "Account Check", "passed")
        h.run()
        deadline = START + _timeout()
        assert h.view("9")["deadline"] == format_time(deadline)

        clock.now = deadline - timedelta(microseconds=1)
        h.sweep()
        assert h.view("9")["status"] == "pending"

        clock.now = deadline
        h.sweep()
        view = h.view("9")
        assert view["status"] == "timed-out"
        assert view["problem"]["reason"] == "timed-out"
        assert view["problem"]["missing"] == ["In Stock", "Fraud Check"]
        assert view["problem"]["failed"] == []

        for _ in range(3):
            clock.advance(minutes=1)
            h.sweep()
        assert h.view("9")["problem"] == view["problem"]
        assert h.delivered("9").count("timed-out") == 1
        assert ledger.created_for("9") == ["timed-out"]
        assert len(outcome_records(aws, "9")) == 1
        record = order_items(aws, "9")[table.ORDER_RECORD]
        assert table.DEADLINE not in record and table.PENDING_SHARD not in record


def test_timeout_deadline_is_set_when_the_order_is_first_seen_and_never_extended(
    load_app: Callable[..., Any], aws: AwsClients, clock: Clock, ledger: Ledger
) -> None:
    with harness(load_app, aws, REQUIRED_CHECKS=THREE_CHECKS) as h:
        h.post("9", "Account Check", "passed")
        h.run()
        clock.advance(seconds=800)
        h.post("9", "In Stock", "passed")
        h.run()
        assert h.view("9")["deadline"] == format_time(START + _timeout())
        clock.now = START + _timeout()
        h.sweep()
        assert h.view("9")["problem"]["missing"] == ["Fraud Check"]
        assert ledger.created_for("9") == ["timed-out"]


def test_timeout_sweep_reads_due_buckets_and_in_full_only_the_due_orders_not_done(
    h: Harness, aws: AwsClients, clock: Clock, ledger: Ledger
) -> None:
    for order_id in ("p1", "p2", "p3"):
        h.post(order_id, "Account Check", "passed")
    _approve(h, "done")
    h.post("bad", "In Stock", "failed", reason="sold out")
    h.run()
    clock.advance(minutes=1)
    for order_id in ("q1", "q2"):
        h.post(order_id, "In Stock", "passed")
    h.run()
    # No order record opened, nothing in the index: the batches' deadline buckets list
    # every order they published.
    assert all(
        table.ORDER_RECORD not in order_items(aws, o) for o in ("p1", "p2", "p3", "q1", "q2")
    )
    assert _listed(aws) == {"p1", "p2", "p3", "q1", "q2", "done", "bad"}

    clock.now = START + _timeout()
    seen = len(h.db.log)
    h.pipeline.run_schedules()
    sweep_calls = h.db.log[seen:]
    assert {operation for operation, _ in sweep_calls} <= {
        "Query",
        "BatchGetItem",
        "PutItem",
        "DeleteItem",
    }
    shards = get_settings().pending_shards
    assert len([p for o, p in sweep_calls if o == "Query" and on_index(p)]) == shards
    assert len([p for o, p in sweep_calls if o == "Query" and on_buckets(p)]) == shards
    # done and bad are dropped by their order records (BatchGetItem); q1 and q2 are not
    # due yet, so their bucket is not even read. Only p1..p3 are read in full.
    order_reads = [
        order_of(p) or ""
        for o, p in sweep_calls
        if o == "Query" and not on_index(p) and not on_buckets(p)
    ]
    assert sorted(order_reads) == ["p1", "p2", "p3"]
    assert _listed(aws) == {"p1", "p2", "p3", "q1", "q2"}  # timed out: looked at again
    h.run()
    statuses = {o: h.view(o)["status"] for o in ("p1", "p2", "p3", "q1", "q2", "done", "bad")}
    assert statuses == {
        "p1": "timed-out",
        "p2": "timed-out",
        "p3": "timed-out",
        "q1": "pending",
        "q2": "pending",
        "done": "invoiced",
        "bad": "rejected",
    }
    assert "Scan" not in h.db.calls


def test_timeout_and_the_missing_check_arriving_together_give_one_outcome(
    h: Harness, aws: AwsClients, clock: Clock, ledger: Ledger
) -> None:
    h.post("race", "Account Check", "passed")
    h.run()
    clock.now = START + _timeout()
    h.pipeline.run_schedules()  # "timed-out" is on the bus ...
    h.post("race", "In Stock", "passed")  # ... when the missing check arrives
    h.run()
    assert "timed-out" in h.delivered("race")
    assert h.view("race")["status"] == "invoiced"
    assert ledger.created_for("race") == ["invoiced"]
    assert len(outcome_records(aws, "race")) == 1


def test_timeout_sweep_repairs_an_order_whose_decision_was_never_delivered(
    h: Harness, clock: Clock, ledger: Ledger
) -> None:
    h.bus.fail_entries(times=None, when=entry_for_order("lost"))
    _approve(h, "lost")
    h.run()
    assert h.delivered("lost") == []
    assert _failed_orders(h) == ["lost"]
    assert h.view("lost")["status"] == "approved"
    h.bus.clear()
    clock.now = START + _timeout()
    h.sweep()
    assert h.view("lost")["status"] == "invoiced"
    assert ledger.created_for("lost") == ["invoiced"]
    assert len(ledger.notified_for("lost")) == 1


def test_timeout_still_happens_for_an_order_whose_stream_record_was_given_up(
    h: Harness, clock: Clock, ledger: Ledger
) -> None:
    attempts = _stream_attempts(h)  # the stream mapping's bounded retries
    h.db.fail("Query", times=attempts, when=for_order("stuck"))
    h.post("stuck", "Account Check", "passed")
    h.run()
    assert _failed_orders(h) == ["stuck"]
    # The API does not open orders: the discarded range reaches stream_recovery, which
    # reads it back from the stream and opens the order (its deadline starts now).
    assert h.recover_failures() == {"batchItemFailures": []}
    clock.now = clock.now + _timeout()
    h.sweep()
    assert h.view("stuck")["status"] == "timed-out"
    assert ledger.created_for("stuck") == ["timed-out"]


# --- 2. late events ------------------------------------------------------------------


def test_late_results_after_a_rejection_are_stored_flagged_and_change_nothing(
    h: Harness, clock: Clock, ledger: Ledger
) -> None:
    h.post("r", "In Stock", "failed", reason="sold out")
    h.post("r", "Account Check", "passed")
    h.run()
    decided = h.view("r")
    assert decided["status"] == "rejected"
    on_bus = len(h.pipeline.delivered)

    clock.advance(seconds=1)
    assert h.post("r", "In Stock", "passed", reason="restocked").status_code == 201
    h.run()
    view = h.view("r")
    assert view["status"] == "rejected"
    assert view["problem"] == decided["problem"]
    assert view["decidedAt"] == decided["decidedAt"]
    assert "invoice" not in view
    assert view["events"]["In Stock"] == {
        "status": "passed",
        "reason": "restocked",
        "occurredAt": format_time(clock.now),
        "late": True,
    }
    assert "late" not in view["events"]["Account Check"]
    assert len(h.pipeline.delivered) == on_bus

    h.redeliver(h.events_for("r"))
    assert h.view("r")["problem"] == decided["problem"]
    assert ledger.created_for("r") == ["rejected"]
    assert ledger.notified == []


def test_late_result_after_a_timeout_is_stored_flagged_and_never_invoiced(
    h: Harness, aws: AwsClients, clock: Clock, ledger: Ledger
) -> None:
    h.post("t", "Account Check", "passed")
    h.run()
    clock.now = START + _timeout()
    h.sweep()
    clock.advance(seconds=1)
    assert h.post("t", "In Stock", "passed").status_code == 201
    h.run()
    h.sweep()
    view = h.view("t")
    assert view["status"] == "timed-out"
    assert view["problem"]["missing"] == ["In Stock"]
    assert view["events"]["In Stock"]["late"] is True
    assert "invoice" not in view
    assert "approved" not in h.delivered("t")
    assert ledger.created_for("t") == ["timed-out"]
    assert ledger.notified == []
    assert len(outcome_records(aws, "t")) == 1


def test_late_failure_after_an_invoice_gives_no_problem_even_when_events_come_again(
    h: Harness, clock: Clock, ledger: Ledger
) -> None:
    _approve(h, "i")
    h.run()
    invoice = h.view("i")["invoice"]
    clock.advance(seconds=1)
    h.post("i", "In Stock", "failed", reason="recount")
    h.run()
    approved = h.events_for("i")[-1]
    assert approved["detail"]["status"] == "approved"
    rejected = {
        **approved,
        "detail": {**approved["detail"], "status": "rejected", "In Stock": "failed"},
    }
    h.redeliver([approved, rejected, approved])
    view = h.view("i")
    assert view["status"] == "invoiced"
    assert view["invoice"] == invoice
    assert "problem" not in view
    assert view["events"]["In Stock"]["late"] is True
    assert ledger.created_for("i") == ["invoiced"]
    assert ledger.notified_for("i") == [invoice["invoiceId"]]


# --- 3. exactly-once outcomes under at-least-once delivery ---------------------------


def test_exactly_once_when_stream_batches_are_delivered_again_whole_or_in_part(
    h: Harness, aws: AwsClients, ledger: Ledger
) -> None:
    _approve(h, "a")
    h.post("b", "Account Check", "passed")
    h.post("b", "In Stock", "failed", reason="sold out")
    h.post("c", "Account Check", "failed", reason="credit")
    h.post("d", "Account Check", "passed")
    records = h.stream_records()
    assert len(records) == 6
    for batch in (records, records, records[3:], records[-1:], records[:2]):
        assert h.aggregate(batch) == {"batchItemFailures": []}
    h.run()  # the pipeline delivers the whole stream once more and routes every event
    assert {o: ledger.created_for(o) for o in "abcd"} == {
        "a": ["invoiced"],
        "b": ["rejected"],
        "c": ["rejected"],
        "d": [],
    }
    assert {o: len(outcome_records(aws, o)) for o in "abcd"} == {"a": 1, "b": 1, "c": 1, "d": 0}
    assert len(ledger.notified_for("a")) == 1
    assert h.view("d")["status"] == "pending"


def test_exactly_once_with_duplicate_eventbridge_deliveries(
    h: Harness, aws: AwsClients, ledger: Ledger
) -> None:
    _approve(h, "x")
    h.post("y", "In Stock", "failed", reason="sold out")
    h.run()
    before = {o: h.view(o) for o in "xy"}
    events = list(h.pipeline.delivered)
    for _ in range(3):
        h.redeliver(events)
    h.redeliver(list(reversed(events)))
    assert {o: h.view(o) for o in "xy"} == before
    assert ledger.created_for("x") == ["invoiced"]
    assert ledger.created_for("y") == ["rejected"]
    assert len(ledger.notified_for("x")) == 1
    assert [len(outcome_records(aws, o)) for o in "xy"] == [1, 1]


def test_exactly_once_when_two_sources_write_in_the_same_millisecond(
    h: Harness, aws: AwsClients, ledger: Ledger
) -> None:
    # The clock stands still: both checks carry the same instant.
    _approve(h, "m")
    records = h.stream_records()
    for record in records:  # each in its own batch: both see the complete order
        h.aggregate([record])
    h.run()
    assert h.delivered("m").count("approved") >= 2
    assert ledger.created_for("m") == ["invoiced"]
    assert len(ledger.notified_for("m")) == 1
    assert len(outcome_records(aws, "m")) == 1


@pytest.mark.parametrize("occurred_at", [None, "2026-01-01T11:00:00Z"])
def test_same_check_from_two_sources_at_the_same_instant_has_one_winner(
    h: Harness, occurred_at: str | None
) -> None:
    extra = {"occurredAt": occurred_at} if occurred_at else {}
    h.post("s1", "In Stock", "passed", **extra)
    h.post("s1", "In Stock", "failed", reason="sold out", **extra)
    h.post("s2", "In Stock", "failed", reason="sold out", **extra)
    h.post("s2", "In Stock", "passed", **extra)
    assert h.view("s1")["events"] == h.view("s2")["events"]


def test_exactly_once_with_results_arriving_out_of_order(
    h: Harness, aws: AwsClients, ledger: Ledger
) -> None:
    newer = h.post("o", "In Stock", "failed", reason="sold out", occurredAt="2026-01-01T11:10:00Z")
    older = h.post("o", "In Stock", "passed", occurredAt="2026-01-01T11:05:00Z")
    assert (newer.status_code, older.status_code) == (201, 200)
    assert older.json_body["state"] == "stale"
    h.run()
    h.post("o", "Account Check", "passed", occurredAt="2026-01-01T11:00:00Z")
    h.run()
    view = h.view("o")
    assert view["status"] == "rejected"
    assert view["events"]["In Stock"]["status"] == "failed"
    assert ledger.created_for("o") == ["rejected"]
    assert len(outcome_records(aws, "o")) == 1


# --- 4. faults survived --------------------------------------------------------------


def test_fault_throttled_write_answers_5xx_writes_nothing_and_the_retry_stores_once(
    h: Harness, aws: AwsClients
) -> None:
    h.db.fail("PutItem", times=2)
    codes = h.post_until_answered("w", "In Stock", "passed")
    assert len(codes) == 3 and all(code >= 500 for code in codes[:2]) and codes[2] == 201
    # One result; the aggregator, not the API, opens the order record.
    names = sorted(item["EventName"]["S"] for item in table_items(aws))
    assert names == ["In Stock"]
    # The write went through but the answer was lost: the retry is a duplicate.
    h.db.fail("PutItem", times=1, after=True)
    when = "2026-01-01T11:00:00Z"
    codes = h.post_until_answered("v", "In Stock", "passed", occurredAt=when)
    assert len(codes) == 2 and codes[0] >= 500 and codes[1] == 200
    assert h.post("v", "In Stock", "passed", occurredAt=when).json_body["state"] == "duplicate"
    assert len(order_items(aws, "v")) == 1


def test_fault_short_throttling_is_absorbed_by_the_sdk_retries(
    h: Harness, aws: AwsClients, ledger: Ledger
) -> None:
    retries = 3  # the app's clients: standard mode, 3 retries
    h.db.fail_sent("PutItem", times=retries)
    assert h.post("s", "Account Check", "passed").status_code == 201
    h.post("s", "In Stock", "passed")
    h.db.fail_sent("Query", times=retries)
    h.run()
    assert h.pipeline.failures.entries == []
    assert h.delivered("s") == ["approved"]
    assert ledger.created_for("s") == ["invoiced"]
    h.db.fail_sent("PutItem", times=retries + 1)
    assert h.post("s2", "In Stock", "passed").status_code >= 500
    assert order_items(aws, "s2") == {}


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", THROTTLING])
def test_fault_handler_crash_on_one_record_retries_only_that_order(
    h: Harness, ledger: Ledger, code: str
) -> None:
    _approve(h, "a", "x", "b")
    fault = h.db.fail("Query", times=1, code=code, when=for_order("x"))
    h.run()
    assert fault.injected == 1
    assert {o: h.delivered(o) for o in "axb"} == {
        "a": ["approved"],
        "x": ["approved"],
        "b": ["approved"],
    }
    assert h.pipeline.failures.entries == []
    assert {o: ledger.created_for(o) for o in "axb"} == {o: ["invoiced"] for o in "axb"}


def test_fault_an_order_that_cannot_be_read_holds_up_no_other_and_is_recovered(
    h: Harness, ledger: Ledger
) -> None:
    poison = h.db.fail("Query", times=None, when=for_order("poison"))
    _approve(h, "before")
    h.post("poison", "Account Check", "passed")
    _approve(h, "after")
    h.run()
    # Nothing is withheld: the orders sharing the batch are published and invoiced at
    # once, even though Lambda discards the whole retried batch once its attempts run out.
    assert {o: ledger.created_for(o) for o in ("before", "after")} == {
        "before": ["invoiced"],
        "after": ["invoiced"],
    }
    assert "poison" in _failed_orders(h)
    assert poison.injected >= _stream_attempts(h)  # bounded by the mapping's attempts
    # The discarded range reaches stream_recovery; while the order still cannot be read,
    # its message goes back to the queue (and, after maxReceiveCount, to the queue's DLQ).
    assert h.recover_failures()["batchItemFailures"]
    h.db.clear()
    assert h.recover_failures() == {"batchItemFailures": []}
    h.run()
    view = h.view("poison")
    assert view["status"] == "pending" and "deadline" in view  # opened: it will time out
    assert {o: ledger.created_for(o) for o in ("before", "after")} == {
        "before": ["invoiced"],
        "after": ["invoiced"],
    }


def test_fault_failed_put_events_entries_are_retried_and_reach_the_bus_once(
    h: Harness, ledger: Ledger
) -> None:
    entry = h.bus.fail_entries(times=2, when=entry_for_order("x"))
    _approve(h, "a", "x", "b")
    h.run()
    assert entry.injected == 2
    assert {o: h.delivered(o) for o in "axb"} == {o: ["approved"] for o in "axb"}
    assert {o: ledger.created_for(o) for o in "axb"} == {o: ["invoiced"] for o in "axb"}


def test_fault_every_entry_of_a_put_events_call_failing_is_retried(
    h: Harness, ledger: Ledger
) -> None:
    _approve(h, "a", "b", "c")
    entry = h.bus.fail_entries(times=3)  # the first call carries exactly these three
    h.run()
    assert entry.injected == 3
    assert {o: h.delivered(o) for o in "abc"} == {o: ["approved"] for o in "abc"}
    assert {o: ledger.created_for(o) for o in "abc"} == {o: ["invoiced"] for o in "abc"}


def test_fault_put_events_failing_past_the_publishers_attempts_is_retried_by_the_stream(
    h: Harness, ledger: Ledger, sleeps: list[float]
) -> None:
    attempts = get_settings().publish_attempts
    entry = h.bus.fail_entries(times=attempts, when=entry_for_order("x"))
    _approve(h, "a", "x", "b")
    h.run()
    assert entry.injected == attempts
    assert len(sleeps) >= attempts - 1
    assert h.pipeline.failures.entries == []
    # x's failed entries never reached the bus; b, published next to them, comes again
    # with the re-delivered records (at least once) and is still invoiced once.
    assert h.delivered("a") == ["approved"]
    assert h.delivered("x") == ["approved"]
    assert {o: ledger.created_for(o) for o in "axb"} == {o: ["invoiced"] for o in "axb"}
    assert {o: len(ledger.notified_for(o)) for o in "axb"} == {o: 1 for o in "axb"}


def test_fault_put_events_call_that_raises_is_retried(h: Harness, ledger: Ledger) -> None:
    call = h.bus.fail("PutEvents", times=2, code=THROTTLING)
    _approve(h, "e")
    h.run()
    assert call.injected == 2
    assert h.delivered("e") == ["approved"]
    assert ledger.created_for("e") == ["invoiced"]


def test_fault_outcome_handler_failures_are_redelivered_and_recorded_once(
    h: Harness, aws: AwsClients, ledger: Ledger, clock: Clock
) -> None:
    h.db.fail("UpdateItem", times=2, when=closing("x"))
    h.db.fail("UpdateItem", times=1, when=closing("y"), after=True)  # written, answer lost
    h.db.fail("Query", times=1, when=for_order("z"))
    _approve(h, "x", "y")
    h.post("z", "In Stock", "failed", reason="sold out")
    h.run()
    # z: the aggregator read failed once too, then the handler's first read.
    assert {o: h.view(o)["status"] for o in "xyz"} == {
        "x": "invoiced",
        "y": "invoiced",
        "z": "rejected",
    }
    assert {o: len(outcome_records(aws, o)) for o in "xyz"} == {"x": 1, "y": 1, "z": 1}
    assert ledger.created_for("x") == ["invoiced"]
    # y's invoice (and its notification claim) was written but the answer lost: the
    # redelivery finds the claim held and tells nobody, as a concurrent duplicate would.
    assert {o: len(ledger.notified_for(o)) for o in "xy"} == {"x": 1, "y": 0}
    assert h.view("y")["notified"] is False
    assert h.pipeline.failures.entries == []
    # The order stays in the pending index until told: once the claim's lease ran out,
    # the sweep at the order's deadline takes the claim over and tells the customer once.
    clock.now = clock.now + _timeout()
    h.sweep()
    h.sweep()
    assert {o: len(ledger.notified_for(o)) for o in "xy"} == {"x": 1, "y": 1}
    assert h.view("y")["notified"] is True


def test_fault_throttled_timeout_sweep_is_completed_by_the_next_run(
    h: Harness, clock: Clock, ledger: Ledger
) -> None:
    h.post("z", "Account Check", "passed")
    h.run()
    clock.now = START + _timeout()
    h.db.fail("Query", times=1, when=on_buckets)
    with pytest.raises(ClientError):
        h.pipeline.run_schedules()
    h.run()
    assert h.view("z")["status"] == "pending"
    clock.advance(minutes=1)
    h.sweep()
    assert h.view("z")["status"] == "timed-out"
    assert ledger.created_for("z") == ["timed-out"]


def test_fault_timed_out_event_that_cannot_be_published_goes_out_with_the_next_sweep(
    h: Harness, clock: Clock, ledger: Ledger
) -> None:
    h.post("z", "Account Check", "passed")
    h.run()
    clock.now = START + _timeout()
    h.bus.fail_entries(times=None, when=entry_with_status("timed-out"))
    h.sweep()
    assert h.view("z")["status"] == "pending"
    h.bus.clear()
    clock.advance(minutes=1)
    h.sweep()
    h.sweep()
    assert h.delivered("z").count("timed-out") == 1
    assert ledger.created_for("z") == ["timed-out"]


# --- 5. hostile input ----------------------------------------------------------------


HOSTILE_POSTS: list[tuple[str, bytes]] = [
    ("7", b'{"name": "In Stock", "status": "passed"'),
    ("7", b'{"name": "#order", "status": "passed"}'),
    ("7", b'{"name": "In Stock", "status": {"$ne": null}}'),
    ("7", b'{"name": "In Stock", "status": "failed", "reason": "a\\u0000b"}'),
    ("7", b'{"name": "In Stock", "status": "passed", "Revision": "9999"}'),
    ("7", b'{"name": "In Stock", "status": "passed", "occurredAt": "${now}"}'),
    ("7", b"[" * 8000 + b"]" * 8000),
    ("7", b'{"name": "In Stock", "status": "passed", "pad": "' + b"x" * 20_000 + b'"}'),
    ("%23order", b'{"name": "In Stock", "status": "passed"}'),
    ("%3Arev", b'{"name": "In Stock", "status": "passed"}'),
    ("..%2F..%2Fetc", b'{"name": "In Stock", "status": "passed"}'),
    ("x%27%3B%20DROP%20TABLE%20orders", b'{"name": "In Stock", "status": "passed"}'),
]


def test_hostile_input_is_refused_with_4xx_and_a_message_and_writes_nothing(
    h: Harness, aws: AwsClients
) -> None:
    for order_id, body in HOSTILE_POSTS:
        response = h.client.http.post(
            f"/orders/{order_id}/events", headers={"Content-Type": "application/json"}, body=body
        )
        assert 400 <= response.status_code < 500, (order_id, body[:60], response.body)
        assert response.json_body["error"], (order_id, body[:60])
    assert table_items(aws) == []


def test_hostile_stream_records_are_skipped_with_a_log_line_not_retried(
    h: Harness, aws: AwsClients
) -> None:
    foreign = {"OrderID": {"S": "f"}, "EventName": {"S": "Colour"}, "Shade": {"S": "red"}}
    aws.dynamodb.put_item(TableName=TABLE, Item=foreign)
    aws.dynamodb.delete_item(TableName=TABLE, Key={k: foreign[k] for k in ("OrderID", "EventName")})
    _approve(h, "ok")
    with app_log() as log:
        h.run()
    skipped = [r for r in log if r.getMessage().startswith("skipped a record")]
    assert Counter(getattr(r, "order_id", None) for r in skipped)["f"] == 2
    assert h.pipeline.failures.entries == []
    assert h.delivered("f") == []
    assert order_items(aws, "f") == {}
    assert h.view("ok")["status"] == "invoiced"


# --- 6. authentication ---------------------------------------------------------------


def _authorizers(app: Any) -> dict[tuple[str, str], Any]:
    return {
        (path, method): entry.authorizer
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


def test_authentication_is_iam_on_deployed_stages_and_none_only_locally(
    load_app: Callable[..., Any],
) -> None:
    expected_routes = {
        ("/orders/{order_id}/events", "POST"),
        ("/orders/{order_id}", "GET"),
        ("/orders/{order_id}", "PUT"),  # the declaration (issue 14)
    }
    iam = _authorizers(load_app(API_AUTH="iam"))
    assert set(iam) == expected_routes
    assert all(isinstance(a, IAMAuthorizer) for a in iam.values())
    assert all(a is None for a in _authorizers(load_app(API_AUTH="none")).values())
    # Unset means IAM: an open API needs an explicit "none".
    default = _authorizers(load_app(API_AUTH=""))
    assert all(isinstance(a, IAMAuthorizer) for a in default.values())

    config = json.loads(CHALICE_CONFIG.read_text())
    assert config.get("environment_variables", {}).get("API_AUTH", "iam") == "iam"
    stages = {
        name: stage["environment_variables"]["API_AUTH"] for name, stage in config["stages"].items()
    }
    assert stages == {"local": "none", "dev": "iam", "prod": "iam"}


def test_authentication_deployed_api_definition_requires_sigv4_on_every_operation(
    load_app: Callable[..., Any],
) -> None:
    app = load_app(API_AUTH="iam")
    swagger = SwaggerGenerator(
        "us-east-1",
        {
            "api_handler_arn": "arn:aws:lambda:us-east-1:123456789012:function:api",
            "api_handler_name": "api",
        },
    ).generate_swagger(app)
    operations = [op for path in swagger["paths"].values() for op in path.values()]
    assert len(operations) == 3  # POST events, GET and PUT (the declaration) an order
    assert all(op["security"] == [{"sigv4": []}] for op in operations)
    assert swagger["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
