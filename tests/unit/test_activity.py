"""The runtime's activity record (local/activity.py): bounded, newest first, by sequence."""

from __future__ import annotations

import threading

from local.activity import ActivityLog, async_source, result_of
from local.lambdas import Outcome


def test_results_name_ok_partial_failed_and_timeout() -> None:
    assert result_of(Outcome("r", value={"batchItemFailures": []})) == "ok"
    assert result_of(Outcome("r", value={"batchItemFailures": [{"itemIdentifier": "1"}]})) == (
        "partial"
    )
    assert result_of(Outcome("r", error="ValueError: boom")) == "failed"
    assert result_of(Outcome("r", error="Task timed out", timed_out=True)) == "timeout"


def test_a_scheduled_event_is_told_from_an_eventbridge_event() -> None:
    assert async_source({"source": "aws.events", "detail-type": "Scheduled Event"}) == "schedule"
    assert async_source({"source": "shop", "detail-type": "Order"}) == "eventbridge"


def test_snapshot_is_newest_first_and_only_what_is_newer_than_since() -> None:
    log = ActivityLog()
    for name in ("a", "b", "c"):
        log.invoked(name, "dynamodb", 1, Outcome("r", value=None), log.clock())
    everything = log.snapshot()
    assert [e["function"] for e in everything["invocations"]] == ["c", "b", "a"]
    since = everything["invocations"][1]["seq"]
    assert [e["function"] for e in log.snapshot(since)["invocations"]] == ["c"]


def test_the_log_keeps_only_the_newest_entries() -> None:
    log = ActivityLog(limit=3)
    for n in range(5):
        log.routed({"id": str(n)}, "default", [], [("r", "event pattern does not match")])
    assert [e["eventId"] for e in log.snapshot()["events"]] == ["4", "3", "2"]


def test_writers_on_many_threads_lose_nothing_and_share_no_sequence_number() -> None:
    log = ActivityLog(limit=10_000)

    def write() -> None:
        for _ in range(200):
            log.invoked("f", "sqs", 1, Outcome("r"), log.clock())

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = [e["seq"] for e in log.snapshot()["invocations"]]
    assert len(seqs) == len(set(seqs)) == 1600
