"""How often a stream mapping reads its stream (local.streams.StreamMapping).

"Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times per
second. When records are available, Lambda invokes your function and waits for the
result." (Lambda developer guide, with-ddb): an idle shard is read at the base rate, a
busy one again as soon as its batch is done, and a read that found the shard drained is
not followed by another that can only come back empty.
"""

from __future__ import annotations

import time
from typing import Any

from local.lambdas import Clock, Functions
from local.streams import (
    LAMBDA_IDLE_POLL_SECONDS,
    FailureQueue,
    StreamMapping,
    StreamReader,
    lambda_record,
)
from local.template import StreamSettings

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


class PagedReader(StreamReader):
    """A stream whose GetRecords pages are given; counts the reads."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.stream_arn = ARN
        self.partition_key = "pk"
        self.pages = pages
        self.reads = 0

    def read(self, limit: int) -> list[dict[str, Any]]:
        self.reads += 1
        return self.pages.pop(0)[:limit] if self.pages else []


def records(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        lambda_record(
            {
                "eventID": str(n),
                "eventName": "INSERT",
                "dynamodb": {"Keys": {"pk": {"S": f"o{n}"}}, "SequenceNumber": str(100 + n)},
            },
            ARN,
            "us-east-1",
        )
        for n in range(start, start + count)
    ]


def mapping(reader: PagedReader, delivered: list[int], idle: float) -> StreamMapping:
    def handler(event: dict[str, Any], context: Any) -> None:
        delivered.append(len(event["Records"]))

    settings = StreamSettings("fn", ARN, 100, 0.0, "TRIM_HORIZON")
    functions = Functions({"fn": handler}, {}, Clock(), "123456789012", "us-east-1")
    return StreamMapping(settings, functions, reader, FailureQueue(), idle_poll_seconds=idle)


def test_the_runtime_polls_an_idle_shard_at_lambdas_base_rate() -> None:
    assert LAMBDA_IDLE_POLL_SECONDS == 0.25  # four times per second


def test_a_short_page_is_not_followed_by_an_empty_read() -> None:
    reader = PagedReader([records(3)])
    delivered: list[int] = []
    mapping(reader, delivered, idle=60).step()
    assert (reader.reads, sum(delivered)) == (1, 3)


def test_a_full_page_is_followed_by_another_read_at_once() -> None:
    reader = PagedReader([records(100), records(5, start=100)])
    delivered: list[int] = []
    polled = mapping(reader, delivered, idle=60)
    polled.step()
    assert reader.reads == 2
    polled.step()  # the first batch is back: the next one goes
    assert delivered == [100, 5]


def test_a_shard_found_empty_is_not_read_again_until_the_poll_interval_passed() -> None:
    reader = PagedReader([[], records(2)])
    delivered: list[int] = []
    polled = mapping(reader, delivered, idle=0.2)
    polled.step()
    polled.step()
    assert (reader.reads, delivered) == (1, [])
    time.sleep(0.25)  # waiting for the interval, not timing anything
    polled.step()
    assert (reader.reads, sum(delivered)) == (2, 2)


def test_without_an_interval_every_step_reads() -> None:
    reader = PagedReader([[], [], records(1)])
    delivered: list[int] = []
    polled = mapping(reader, delivered, idle=0.0)
    for _ in range(3):
        polled.step()
    assert (reader.reads, sum(delivered)) == (3, 1)
