"""The stand-in's own rules (tests/awsrules), checked against the documented behaviour
with plain handlers: no AWS, no app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.awsrules.eventbridge import (
    MAX_REQUEST_BYTES,
    check_put_events,
    entry_size,
    request_size,
)
from tests.awsrules.lambda_async import AsyncInvocation, AsyncInvoker
from tests.awsrules.lambda_streams import (
    RETRY_ATTEMPTS_EXHAUSTED,
    ListSink,
    Shard,
    StreamEventSourceMapping,
    StreamMappingConfig,
)
from tests.awsrules.scheduler import LockstepScheduler

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"


def _record(seq: int, order: str, check: str) -> dict[str, Any]:
    return {
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"OrderID": {"S": order}, "EventName": {"S": check}},
            "SequenceNumber": f"{seq:022d}",
            "ApproximateCreationDateTime": 1_767_268_800,
        },
    }


def _shard(records: list[dict[str, Any]]) -> Shard:
    return Shard("shardId-1", ARN, records)


def _seqs(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


def test_partial_batch_response_resumes_at_the_lowest_reported_sequence_number() -> None:
    seen: list[list[str]] = []
    records = [_record(i, f"o{i}", "A") for i in range(1, 6)]

    def handler(event: dict[str, Any]) -> Any:
        seen.append(_seqs(event))
        if len(seen) == 1:  # report records 4 and 2: Lambda retries from 2
            return {
                "batchItemFailures": [
                    {"itemIdentifier": f"{4:022d}"},
                    {"itemIdentifier": f"{2:022d}"},
                ]
            }
        return {"batchItemFailures": []}

    config = StreamMappingConfig(batch_size=10, report_batch_item_failures=True)
    StreamEventSourceMapping(config, handler).run(_shard(records))
    assert seen == [[f"{i:022d}" for i in range(1, 6)], [f"{i:022d}" for i in range(2, 6)]]


def test_an_invalid_item_identifier_fails_the_whole_batch() -> None:
    seen: list[list[str]] = []

    def handler(event: dict[str, Any]) -> Any:
        seen.append(_seqs(event))
        return {"batchItemFailures": [{"itemIdentifier": ""}]} if len(seen) == 1 else None

    config = StreamMappingConfig(batch_size=10, report_batch_item_failures=True)
    StreamEventSourceMapping(config, handler).run(_shard([_record(i, "o", "A") for i in (1, 2)]))
    assert seen[1] == seen[0]


def test_the_retried_batch_is_discarded_after_maximum_retry_attempts_with_its_batch_info() -> None:
    calls: list[list[str]] = []

    def handler(event: dict[str, Any]) -> Any:
        calls.append(_seqs(event))
        return {"batchItemFailures": [{"itemIdentifier": f"{2:022d}"}]}  # record 2 keeps failing

    sink = ListSink()
    config = StreamMappingConfig(
        batch_size=10, report_batch_item_failures=True, maximum_retry_attempts=2
    )
    report = StreamEventSourceMapping(config, handler, sink).run(
        _shard([_record(i, f"o{i}", "A") for i in range(1, 5)])
    )
    assert len(calls) == 3  # the first attempt and two retries, all from record 2
    assert calls[1] == calls[2] == [f"{i:022d}" for i in range(2, 5)]
    assert report.discarded_records == 3
    (message,) = sink.messages
    info = message["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == f"{2:022d}" and info["endSequenceNumber"] == f"{4:022d}"
    assert info["batchSize"] == 3 and info["shardId"] == "shardId-1" and info["streamArn"] == ARN
    assert message["requestContext"]["condition"] == RETRY_ATTEMPTS_EXHAUSTED
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert {"requestContext", "responseContext", "version", "timestamp"} <= message.keys()


def test_a_function_error_bisects_the_batch_without_using_the_retry_quota() -> None:
    sizes: list[int] = []

    def handler(event: dict[str, Any]) -> Any:
        sizes.append(len(event["Records"]))
        if any(r["dynamodb"]["Keys"]["OrderID"]["S"] == "bad" for r in event["Records"]):
            raise RuntimeError("poison")
        return None

    records = [_record(i, "bad" if i == 3 else f"o{i}", "A") for i in range(1, 5)]
    config = StreamMappingConfig(
        batch_size=4, bisect_batch_on_function_error=True, maximum_retry_attempts=1
    )
    report = StreamEventSourceMapping(config, handler, ListSink()).run(_shard(records))
    assert sizes[:3] == [4, 2, 2]  # whole batch, then the halves
    assert report.discarded_sequence_numbers == [f"{3:022d}"]  # only the poison record
    assert report.discarded[0]["responseContext"]["functionError"] == "Unhandled"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parallel_batches_keep_each_item_in_order_and_never_in_two_in_flight_batches(
    seed: int,
) -> None:
    records = [_record(i, f"o{i % 7}", "AB"[i % 2]) for i in range(1, 121)]
    config = StreamMappingConfig(batch_size=5, parallelization_factor=10)
    mapping = StreamEventSourceMapping(config, lambda event: None, seed=seed)
    report = mapping.run(_shard(records))
    item_of = {
        r["dynamodb"]["SequenceNumber"]: json.dumps(r["dynamodb"]["Keys"], sort_keys=True)
        for r in records
    }
    delivered: dict[str, list[str]] = {}
    concurrent_partitions = False
    for in_flight in report.rounds():
        items = [item_of[s] for inv in in_flight for s in inv.sequence_numbers]
        batches_per_item = {
            item: {
                i
                for i, inv in enumerate(in_flight)
                for s in inv.sequence_numbers
                if item_of[s] == item
            }
            for item in items
        }
        assert all(len(b) == 1 for b in batches_per_item.values())
        orders = [json.loads(item)["OrderID"]["S"] for item in set(items)]
        concurrent_partitions |= len(orders) != len(set(orders))
        for inv in in_flight:
            for s in inv.sequence_numbers:
                delivered.setdefault(item_of[s], []).append(s)
    assert all(seqs == sorted(seqs) for seqs in delivered.values())
    assert len(report.rounds()[0]) > 1, "batches of one shard run at the same time"
    assert concurrent_partitions, "one partition key, different sort keys: may run concurrently"


def test_entry_size_follows_eventbridges_calculation() -> None:
    entry = {
        "Source": "src",
        "DetailType": "dt",
        "Detail": '{"a":"é"}',
        "Resources": ["r1", "r22"],
        "Time": 1,
    }
    assert entry_size(entry) == 14 + 3 + 2 + len('{"a":"é"}'.encode()) + 2 + 3
    assert entry_size({"Source": "s", "DetailType": "d"}) == 2


def test_put_events_refuses_a_request_of_256_kb_or_more_as_a_whole() -> None:
    def entry(detail_bytes: int) -> dict[str, Any]:
        return {"Source": "s", "DetailType": "d", "Detail": "x" * detail_bytes}

    below = [entry(MAX_REQUEST_BYTES - 3)]
    assert request_size(below) == MAX_REQUEST_BYTES - 1
    check_put_events(below)
    with pytest.raises(ClientError) as refused:
        check_put_events([entry(MAX_REQUEST_BYTES - 2)])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError):
        check_put_events([entry(1)] * 11)


def test_async_invocation_retries_twice_then_sends_the_on_failure_record() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def failing(event: dict[str, Any]) -> Any:
        calls.append(1)
        raise RuntimeError("down")

    report = AsyncInvoker(wait=waits.append).run([AsyncInvocation("f", failing, {"id": "e"})])
    assert len(calls) == 3 and waits == [60.0, 120.0]
    (record,) = report.on_failure
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"id": "e"}


def test_lockstep_scheduler_interleaves_the_same_way_for_the_same_seed() -> None:
    def traces(seed: int) -> list[str]:
        scheduler = LockstepScheduler(seed)
        trace: list[str] = []

        def task(name: str) -> Any:
            def run() -> Any:
                for step in range(3):
                    trace.append(f"{name}{step}")
                    scheduler.turn()

            return run

        scheduler.run([task("a"), task("b"), task("c")])
        return trace

    assert traces(1) == traces(1)
    assert len({tuple(traces(seed)) for seed in range(6)}) > 1
    assert sorted(traces(3)) == sorted(f"{n}{s}" for n in "abc" for s in range(3))


def test_a_batch_older_than_maximum_record_age_is_discarded_without_an_invocation() -> None:
    from datetime import UTC, datetime, timedelta

    calls: list[int] = []
    created = datetime.fromtimestamp(1_767_268_800, UTC)
    config = StreamMappingConfig(batch_size=10, maximum_record_age_in_seconds=3600)
    sink = ListSink()
    mapping = StreamEventSourceMapping(
        config, lambda event: calls.append(1), sink, now=lambda: created + timedelta(hours=2)
    )
    report = mapping.run(_shard([_record(1, "o", "A")]))
    assert calls == [] and report.discarded_records == 1
    assert sink.messages[0]["requestContext"]["condition"] == "RecordAgeExceeded"
