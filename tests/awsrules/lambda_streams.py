"""Lambda's DynamoDB stream event source mapping, as AWS documents it.

Rules played here (each cited where it is applied):

* Batches of at most ``BatchSize`` records, in stream order
  (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html).
* Partial batch response (``ReportBatchItemFailures``): "If the batchItemFailures array
  contains multiple items, Lambda uses the record with the lowest sequence number as the
  checkpoint. Lambda then retries all records starting from that checkpoint." An empty or
  null ``itemIdentifier``, or one naming no record of the batch, makes the whole batch a
  failure; an empty or null list is a complete success
  (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html).
* ``BisectBatchOnFunctionError``: a function error splits the batch in two and retries
  each half; "Splitting a batch does not count towards the retry quota". With a partial
  batch response the batch "is bisected at the returned sequence number and Lambda
  retries only the remaining records" (same page;
  https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
* ``MaximumRetryAttempts`` / ``MaximumRecordAgeInSeconds`` (-1 = infinite): "If the error
  handling measures fail, Lambda discards the records and continues processing batches
  from the stream" and sends an invocation record to the on-failure destination: a JSON
  document with ``requestContext`` (``condition`` ``RetryAttemptsExhausted`` or
  ``RecordAgeExceeded``, ``approximateInvokeCount``), ``responseContext``, ``version``,
  ``timestamp`` and ``DDBStreamBatchInfo`` (``shardId``, ``startSequenceNumber``,
  ``endSequenceNumber``, ``approximateArrivalOfFirstRecord``,
  ``approximateArrivalOfLastRecord``, ``batchSize``, ``streamArn``)
  (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
* ``ParallelizationFactor`` N (1–10): up to N batches of one shard are processed at
  once, and "Lambda still ensures in-order processing at the item level (partition and
  sort key)" (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html, concurrent
  reading of shards). Modelled as N virtual shards chosen by a seeded hash of the item's
  key: records of one item always share a virtual shard (never two in-flight batches, in
  order); items of one partition key with different sort keys may land in different
  virtual shards and run at the same time.
* Event filtering happens before batching (``FilterCriteria``,
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
* At-least-once: "Lambda event source mappings process each event at least once, and
  duplicate processing of records can occur"
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html).

Example::

    shard = read_shards(streams, stream_arn)[0]
    mapping = StreamEventSourceMapping(StreamMappingConfig.deployed(), handler,
                                       on_failure=ListSink(), seed=3)
    report = mapping.run(shard)
    report.discarded_records, report.invocations
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from local.eventbridge import matches
from local.streams import lambda_record
from tests.awsrules.scheduler import Runner, TaskOutcome, run_sequentially

Record = dict[str, Any]
Handler = Callable[[dict[str, Any]], Any]

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(frozen=True)
class StreamMappingConfig:
    """The event source mapping's settings that change delivery (AWS names, AWS defaults)."""

    batch_size: int = 100
    parallelization_factor: int = 1
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_in_seconds: int = -1
    report_batch_item_failures: bool = False
    function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:aggregator"

    @classmethod
    def from_properties(
        cls, properties: Mapping[str, Any], batch_size: int = 100, function_arn: str = ""
    ) -> StreamMappingConfig:
        """From CloudFormation-style properties (``ParallelizationFactor``, …)."""
        return cls(
            batch_size=int(properties.get("BatchSize", batch_size)),
            parallelization_factor=int(properties.get("ParallelizationFactor", 1)),
            bisect_batch_on_function_error=bool(properties.get("BisectBatchOnFunctionError")),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            maximum_record_age_in_seconds=int(properties.get("MaximumRecordAgeInSeconds", -1)),
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
            function_arn=function_arn or cls.function_arn,
        )


# --- records --------------------------------------------------------------------------


def sequence_number(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _seq_key(number: str) -> int:
    """Sequence numbers are decimal strings; they order as numbers."""
    return int(number)


def item_key(record: Mapping[str, Any]) -> str:
    """The item a record changes: its full primary key (partition and sort key)."""
    return json.dumps(record["dynamodb"]["Keys"], sort_keys=True)


def _arrival(record: Mapping[str, Any]) -> datetime:
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime", 0)
    if isinstance(created, datetime):
        return created.astimezone(UTC)
    return datetime.fromtimestamp(float(created), UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Shard:
    """One stream shard's records (Lambda-shaped), oldest first."""

    shard_id: str
    stream_arn: str
    records: list[Record]


def read_shards(streams: Any, stream_arn: str, region: str = "us-east-1") -> list[Shard]:
    """Every record of every shard of a stream (``dynamodbstreams`` client, e.g. moto's)."""
    shards: list[Shard] = []
    description = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    for shard in description.get("Shards", []):
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[Record] = []
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            fresh = page.get("Records", [])
            if not fresh:
                break
            records.extend(lambda_record(r, stream_arn, region) for r in fresh)
            iterator = page.get("NextShardIterator")
        shards.append(Shard(shard["ShardId"], stream_arn, records))
    return shards


def filtered(shard: Shard, patterns: Sequence[Mapping[str, Any]]) -> Shard:
    """The shard as the function sees it through ``FilterCriteria`` (any pattern matches)."""
    if not patterns:
        return shard
    kept = [r for r in shard.records if any(matches(p, r) for p in patterns)]
    return Shard(shard.shard_id, shard.stream_arn, kept)


# --- the on-failure destination -------------------------------------------------------


class OnFailureSink(Protocol):
    """Where discarded batches are described (an SQS queue or SNS topic on AWS)."""

    def send(self, message: dict[str, Any]) -> None: ...


@dataclass
class ListSink:
    """An on-failure destination that keeps the messages in a list."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


@dataclass
class SqsSink:
    """An on-failure destination that is an SQS queue (e.g. on moto)."""

    sqs: Any
    queue_url: str
    sent: int = 0

    def send(self, message: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))
        self.sent += 1


def on_failure_message(
    records: Sequence[Record],
    *,
    condition: str,
    invoke_count: int,
    function_arn: str,
    shard_id: str,
    stream_arn: str,
    function_error: str | None,
    timestamp: datetime,
    request_id: str,
) -> dict[str, Any]:
    """The invocation record Lambda sends for a discarded batch (services-dynamodb-errors)."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = function_error
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": timestamp.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence_number(records[0]),
            "endSequenceNumber": sequence_number(records[-1]),
            "approximateArrivalOfFirstRecord": _iso(_arrival(records[0])),
            "approximateArrivalOfLastRecord": _iso(_arrival(records[-1])),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


# --- the mapping ----------------------------------------------------------------------


@dataclass
class _Batch:
    records: list[Record]
    retries: int = 0
    invocations: int = 0


@dataclass
class Invocation:
    """One call of the function: the batch it got and what came back."""

    round: int
    virtual_shard: int
    sequence_numbers: list[str]
    response: Any = None
    error: BaseException | None = None


@dataclass
class MappingReport:
    """What the mapping did with one shard."""

    invocations: list[Invocation] = field(default_factory=list)
    discarded: list[dict[str, Any]] = field(default_factory=list)
    discarded_sequence_numbers: list[str] = field(default_factory=list)

    @property
    def discarded_records(self) -> int:
        return len(self.discarded_sequence_numbers)

    def rounds(self) -> list[list[Invocation]]:
        """Invocations grouped by the round in which they were in flight together."""
        grouped: dict[int, list[Invocation]] = {}
        for invocation in self.invocations:
            grouped.setdefault(invocation.round, []).append(invocation)
        return [grouped[key] for key in sorted(grouped)]


@dataclass
class _VirtualShard:
    index: int
    waiting: deque[Record]
    batches: deque[_Batch] = field(default_factory=deque)

    def next_batch(self, size: int) -> _Batch | None:
        if not self.batches and self.waiting:
            taken = [self.waiting.popleft() for _ in range(min(size, len(self.waiting)))]
            self.batches.append(_Batch(taken))
        return self.batches[0] if self.batches else None


class ShardStalled(RuntimeError):
    """The mapping kept retrying past ``max_invocations`` (infinite retries, no expiry)."""


class StreamEventSourceMapping:
    """Feeds one shard to a handler under Lambda's documented stream rules."""

    def __init__(
        self,
        config: StreamMappingConfig,
        handler: Handler,
        on_failure: OnFailureSink | None = None,
        *,
        seed: int = 0,
        runner: Runner | None = None,
        now: Callable[[], datetime] | None = None,
        max_invocations: int = 10_000,
    ) -> None:
        if not 1 <= config.parallelization_factor <= 10:
            raise ValueError("ParallelizationFactor is 1 to 10")
        self.config = config
        self._handler = handler
        self._on_failure = on_failure
        self._seed = seed
        self._rng = random.Random(seed)
        self._runner: Runner = runner or (lambda tasks: run_sequentially(tasks, seed))
        self._now = now or (lambda: datetime.now(UTC))
        self._max_invocations = max_invocations

    def virtual_shard_of(self, record: Mapping[str, Any]) -> int:
        """Which of the N concurrent lanes carries this record: a seeded hash of its item."""
        digest = hashlib.sha256(f"{self._seed}:{item_key(record)}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % self.config.parallelization_factor

    def run(self, shard: Shard) -> MappingReport:
        """Deliver every record of ``shard``; return what happened."""
        lanes = [_VirtualShard(i, deque()) for i in range(self.config.parallelization_factor)]
        for record in shard.records:
            lanes[self.virtual_shard_of(record)].waiting.append(record)
        report = MappingReport()
        round_number = 0
        while True:
            in_flight = [
                (lane, batch)
                for lane in lanes
                if (batch := lane.next_batch(self.config.batch_size)) is not None
            ]
            if not in_flight:
                return report
            in_flight = [
                (lane, b) for lane, b in in_flight if not self._expired(shard, lane, b, report)
            ]
            if len(report.invocations) + len(in_flight) > self._max_invocations:
                raise ShardStalled(f"more than {self._max_invocations} invocations")
            outcomes = self._runner([self._task(batch) for _, batch in in_flight])
            for (lane, batch), outcome in zip(in_flight, outcomes, strict=True):
                batch.invocations += 1
                report.invocations.append(
                    Invocation(
                        round_number,
                        lane.index,
                        [sequence_number(r) for r in batch.records],
                        outcome.value,
                        outcome.error,
                    )
                )
                self._settle(shard, lane, batch, outcome, report)
            round_number += 1

    def _task(self, batch: _Batch) -> Callable[[], Any]:
        event = {"Records": [dict(r) for r in batch.records]}
        return lambda: self._handler(event)

    def _expired(
        self, shard: Shard, lane: _VirtualShard, batch: _Batch, report: MappingReport
    ) -> bool:
        """``MaximumRecordAgeInSeconds``: a batch whose oldest record is too old is
        discarded before the function is invoked."""
        limit = self.config.maximum_record_age_in_seconds
        if limit < 0:
            return False
        age = (self._now() - _arrival(batch.records[0])).total_seconds()
        if age <= limit:
            return False
        self._discard(shard, lane, batch, RECORD_AGE_EXCEEDED, None, report)
        return True

    def _settle(
        self,
        shard: Shard,
        lane: _VirtualShard,
        batch: _Batch,
        outcome: TaskOutcome[Any],
        report: MappingReport,
    ) -> None:
        if outcome.error is not None:
            self._function_error(shard, lane, batch, report)
            return
        remaining = self._remaining(batch, outcome.value)
        if not remaining:
            lane.batches.popleft()
            return
        # Partial failure (or an invalid response: the whole batch). Retry what remains;
        # with bisect on, Lambda splits at the checkpoint and retries only the rest.
        lane.batches[0] = _Batch(remaining, batch.retries + 1, batch.invocations)
        if self._retries_exhausted(lane.batches[0]):
            self._discard(shard, lane, lane.batches[0], RETRY_ATTEMPTS_EXHAUSTED, None, report)

    def _function_error(
        self, shard: Shard, lane: _VirtualShard, batch: _Batch, report: MappingReport
    ) -> None:
        if self.config.bisect_batch_on_function_error and len(batch.records) > 1:
            half = len(batch.records) // 2
            lane.batches.popleft()
            # "Splitting a batch does not count towards the retry quota."
            lane.batches.appendleft(_Batch(batch.records[half:], batch.retries, 0))
            lane.batches.appendleft(_Batch(batch.records[:half], batch.retries, 0))
            return
        batch.retries += 1
        if self._retries_exhausted(batch):
            self._discard(shard, lane, batch, RETRY_ATTEMPTS_EXHAUSTED, "Unhandled", report)

    def _retries_exhausted(self, batch: _Batch) -> bool:
        limit = self.config.maximum_retry_attempts
        return limit >= 0 and batch.retries > limit

    def _remaining(self, batch: _Batch, response: Any) -> list[Record]:
        """The records Lambda retries after a successful invocation's response."""
        if not self.config.report_batch_item_failures:
            return []
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return []
        numbers = [sequence_number(r) for r in batch.records]
        identifiers = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(not isinstance(i, str) or i not in numbers for i in identifiers):
            return list(batch.records)  # a complete failure
        checkpoint = min((i for i in identifiers if isinstance(i, str)), key=_seq_key)
        return batch.records[numbers.index(checkpoint) :]

    def _discard(
        self,
        shard: Shard,
        lane: _VirtualShard,
        batch: _Batch,
        condition: str,
        function_error: str | None,
        report: MappingReport,
    ) -> None:
        lane.batches.popleft()
        message = on_failure_message(
            batch.records,
            condition=condition,
            invoke_count=max(batch.invocations, 1),
            function_arn=self.config.function_arn,
            shard_id=shard.shard_id,
            stream_arn=shard.stream_arn,
            function_error=function_error,
            timestamp=self._now(),
            request_id=str(uuid.UUID(int=self._rng.getrandbits(128))),
        )
        report.discarded.append(message)
        report.discarded_sequence_numbers.extend(sequence_number(r) for r in batch.records)
        if self._on_failure is not None:
            self._on_failure.send(message)


def sequence_numbers(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return [sequence_number(r) for r in records]
