"""DynamoDB stream → ``on_dynamodb_record`` handlers, as Lambda's event source mapping runs.

:class:`StreamReader` reads a table's stream shard by shard and shapes each record as
Lambda delivers it (``eventSourceARN``, numeric ``ApproximateCreationDateTime`` …). It
starts where ``StartingPosition`` says: ``TRIM_HORIZON`` at the oldest record, ``LATEST``
at the end of each shard when the mapping is created.

:class:`StreamMapping` plays the mapping with the settings of
:class:`local.template.StreamSettings` (services-ddb-params, services-dynamodb-errors,
services-ddb-batchfailurereporting):

* a shard that had no new records is read again ``idle_poll_seconds`` later (the runtime
  uses Lambda's base rate, :data:`LAMBDA_IDLE_POLL_SECONDS`); while records keep coming
  it is read at every step;
* records that match none of ``FilterCriteria`` are dropped before batching;
* records are spread over ``shards`` virtual shards by partition key and, within a shard,
  over ``ParallelizationFactor`` lanes by item (partition and sort key). Each lane has at
  most one batch in flight, so records of one item are never in two in-flight batches and
  keep their order; items of one partition key may run side by side;
* a batch goes when it has ``BatchSize`` records or the batching window has passed;
* a function error (an exception or a timeout) bisects the batch when
  ``BisectBatchOnFunctionError`` is on (splitting uses no retry), otherwise it is a retry;
* a ``batchItemFailures`` response counts only with ``ReportBatchItemFailures``: the lane
  checkpoints before the lowest reported sequence number and retries from there. An
  identifier that names no record of the batch fails the whole batch. Without
  ``ReportBatchItemFailures`` the response is ignored and the batch succeeded;
* after ``MaximumRetryAttempts`` retries, or once a record of the retried batch is older
  than ``MaximumRecordAgeInSeconds``, the whole retried batch is discarded: one message in
  Lambda's on-failure shape (``DDBStreamBatchInfo``, ``requestContext``,
  ``responseContext``) goes to the ``DestinationConfig.OnFailure`` queue and the lane moves
  on. ``-1`` means no limit.

Example::

    reader = StreamReader(streams_client, stream_arn, region="us-east-1")
    mapping = StreamMapping(settings, functions, reader, failures=queue)
    while mapping.step():
        pass
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.activity import ActivityLog
from local.eventbridge import matches
from local.lambdas import Clock, Functions, Outcome
from local.plugins import Hop as PluginHop
from local.template import StreamSettings

# A note (str) or a hop the app's plug-in may word (local.plugins.Hop).
Hop = Callable[[str | PluginHop], None]
# "Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times per
# second. When records are available, Lambda invokes your function and waits for the
# result." (with-ddb, Polling and batching streams)
LAMBDA_IDLE_POLL_SECONDS = 0.25
# Lambda's condition names in on-failure records. "RetryAttemptsExhausted" is the one
# Lambda's documentation shows (services-dynamodb-errors); the record-age condition is not
# shown there, so the runtime names it after the setting.
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_TOO_OLD = "MaximumRecordAgeExceeded"


def lambda_record(
    record: Mapping[str, Any], stream_arn: str, region: str, shard_id: str = ""
) -> dict[str, Any]:
    """A stream record as Lambda hands it to a function."""
    shaped = dict(record)
    data = dict(shaped.get("dynamodb") or {})
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = int(created.timestamp())
    elif created is None:
        data["ApproximateCreationDateTime"] = int(time.time())
    data.setdefault("SizeBytes", 0)
    shaped["dynamodb"] = data
    shaped["eventSourceARN"] = stream_arn
    shaped.setdefault("awsRegion", region)
    shaped.setdefault("eventSource", "aws:dynamodb")
    shaped.setdefault("eventVersion", "1.1")
    if shard_id:
        # Not part of the record Lambda delivers; removed before invocation.
        shaped[_SHARD] = shard_id
    return shaped


_SHARD = "__local_shard_id"


def record_hop(function: str, record: Mapping[str, Any], result: str) -> PluginHop:
    """One stream record as a hop: ``[dynamodb] fn (1 record) → received: INSERT 7 a``
    unless the app's plug-in words it (:mod:`local.plugins`)."""
    data = record.get("dynamodb") or {}
    keys = [str(next(iter(v.values()), "?")) for v in (data.get("Keys") or {}).values()]
    visible = {k: v for k, v in record.items() if k != _SHARD}
    detail = " ".join([str(record.get("eventName"))] + keys)
    return PluginHop(function, "dynamodb", 1, result, visible, detail)


class StreamReader:
    """Reads new records of one stream, all shards, oldest first.

    The mapping reads a record's sequence number, arrival time and keys through the
    reader, so another kind of stream (:class:`local.kinesis.KinesisReader`) is played by
    the same :class:`StreamMapping`."""

    # The key of the batch description in Lambda's on-failure record.
    BATCH_INFO = "DDBStreamBatchInfo"

    def __init__(
        self, client: Any, stream_arn: str, region: str, position: str = "TRIM_HORIZON"
    ) -> None:
        if position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(
                f"StartingPosition {position!r}: DynamoDB streams take TRIM_HORIZON or LATEST"
            )
        self.stream_arn = stream_arn
        self._client = client
        self._region = region
        self._position = position
        self._iterators: dict[str, str | None] = {}
        self._shards_checked = float("-inf")
        self.partition_key: str | None = None
        # The mapping's starting position applies to the shards that exist when it is
        # created; a shard that appears later holds only newer records.
        self._refresh_shards()
        self._position = "TRIM_HORIZON"

    def _refresh_shards(self) -> None:
        """Pick up new shards, at most once a second (DescribeStream is not free)."""
        if time.monotonic() - self._shards_checked < 1.0:
            return
        self._shards_checked = time.monotonic()
        description = self._client.describe_stream(StreamArn=self.stream_arn)
        for key in description["StreamDescription"].get("KeySchema", []):
            if key.get("KeyType") == "HASH":
                self.partition_key = key["AttributeName"]
        for shard in description["StreamDescription"].get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=self._position
                )["ShardIterator"]

    def filtered_view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """What a ``FilterCriteria`` pattern is matched against: the record itself."""
        return {k: v for k, v in record.items() if k != _SHARD}

    def sequence_number(self, record: Mapping[str, Any]) -> str:
        number: str = record["dynamodb"]["SequenceNumber"]
        return number

    def arrival(self, record: Mapping[str, Any]) -> float:
        """When the record was written (epoch seconds)."""
        created: float = record["dynamodb"]["ApproximateCreationDateTime"]
        return created

    def lane_keys(self, record: Mapping[str, Any]) -> tuple[Any, Any]:
        """(what picks the shard, what picks the lane): the partition key, the item."""
        keys = _keys(record)
        partition = self.partition_key
        return (keys.get(partition) if partition else keys), keys

    def hop(self, function: str, record: Mapping[str, Any], result: str) -> PluginHop:
        """The record as a hop (:func:`record_hop`)."""
        return record_hop(function, record, result)

    def read(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records not read before."""
        self._refresh_shards()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in self._iterators.items():
            if iterator is None or len(records) >= limit:
                continue
            page = self._client.get_records(ShardIterator=iterator, Limit=limit - len(records))
            self._iterators[shard_id] = page.get("NextShardIterator")
            records.extend(self._record(r, shard_id) for r in page.get("Records", []))
        return records

    def _record(self, raw: Mapping[str, Any], shard_id: str) -> dict[str, Any]:
        """One GetRecords record as Lambda delivers it (Kinesis overrides this)."""
        return lambda_record(raw, self.stream_arn, self._region, shard_id)


@dataclass
class FailureQueue:
    """What the mappings discarded: each record, and each on-failure message sent."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, function: str, records: list[dict[str, Any]], error: str) -> None:
        with self._lock:
            for record in records:
                self.entries.append({"function": function, "error": error, "record": record})

    def add_message(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)


# Sends an on-failure message (a JSON document) to a local queue by name.
Destination = Callable[[str, dict[str, Any]], None]


def _stable_hash(value: Any) -> int:
    return zlib.crc32(json.dumps(value, sort_keys=True, default=str).encode())


def _keys(record: Mapping[str, Any]) -> dict[str, Any]:
    keys: dict[str, Any] = (record.get("dynamodb") or {}).get("Keys") or {}
    return keys


@dataclass
class _Lane:
    """One of the ``ParallelizationFactor`` batch sequences of a (virtual) shard."""

    key: tuple[int, int]
    pending: list[dict[str, Any]] = field(default_factory=list)
    first_buffered: float = 0.0
    cap: int = 0
    retries: int = 0
    invocations: int = 0
    busy: bool = False


class StreamMapping:
    """One ``on_dynamodb_record`` function fed from one stream."""

    def __init__(
        self,
        settings: StreamSettings,
        functions: Functions,
        reader: StreamReader,
        failures: FailureQueue,
        on_hop: Hop | None = None,
        destination: Destination | None = None,
        shards: int = 1,
        executor: Executor | None = None,
        duplicate_rate: float = 0.0,
        seed: int | None = None,
        activity: ActivityLog | None = None,
        idle_poll_seconds: float = 0.0,
    ) -> None:
        self.settings = settings
        self.name = settings.function
        self._idle_poll_seconds = idle_poll_seconds
        self._next_read = float("-inf")
        self._activity = activity
        self._functions = functions
        self._clock: Clock = functions.clock
        self._reader = reader
        self._failures = failures
        self._hop = on_hop or (lambda line: None)
        self._destination = destination
        self._shards = max(1, shards)
        self._executor = executor
        self._duplicate_rate = duplicate_rate
        self._random = random.Random(seed)
        self._lanes: dict[tuple[int, int], _Lane] = {}
        self._lock = threading.Lock()
        self._flush = False

    @classmethod
    def for_handler(
        cls,
        name: str,
        handler: Callable[[dict[str, Any], Any], Any],
        reader: StreamReader,
        batch_size: int,
        failures: FailureQueue,
        window_seconds: float = 0.0,
        account: str = "123456789012",
        region: str = "us-east-1",
    ) -> StreamMapping:
        """A mapping with Lambda's defaults around one plain handler (benchmarks)."""
        settings = StreamSettings(
            name, reader.stream_arn, batch_size, window_seconds, "TRIM_HORIZON"
        )
        functions = Functions({name: handler}, {}, Clock(), account, region)
        return cls(settings, functions, reader, failures)

    @property
    def idle(self) -> bool:
        with self._lock:
            return all(not lane.pending and not lane.busy for lane in self._lanes.values())

    def snapshot(self) -> dict[str, Any]:
        """Records waiting, batches in flight and retries, over every lane (web UI)."""
        with self._lock:
            lanes = list(self._lanes.values())
            return {
                "function": self.name,
                "source": "dynamodb",
                "streamArn": self._reader.stream_arn,
                "waiting": sum(len(lane.pending) for lane in lanes),
                "inFlight": sum(1 for lane in lanes if lane.busy),
                "retrying": sum(1 for lane in lanes if lane.retries),
                "retries": sum(lane.retries for lane in lanes),
                "lanes": len(lanes),
                "onFailure": self.settings.on_failure_queue,
            }

    def flush_window(self) -> None:
        """Let the records buffered so far go without waiting for the batching window."""
        self._flush = True

    def step(self) -> bool:
        """Read new records and start every batch that is due. Returns whether any was."""
        self._fill()
        due = self._due_batches()
        self._flush = False
        for lane, batch in due:
            if self._executor is None:
                self._deliver(lane, batch)
            else:
                self._executor.submit(self._deliver, lane, batch).add_done_callback(_raise)
        return bool(due)

    # --- reading and spreading ---------------------------------------------------------

    def _lane_for(self, record: Mapping[str, Any]) -> _Lane:
        shard_key, item = self._reader.lane_keys(record)
        shard = _stable_hash(shard_key) % self._shards
        lane_index = _stable_hash(item) % max(1, self.settings.parallelization_factor)
        key = (shard, lane_index)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key, cap=self.settings.batch_size)
        return lane

    def _fill(self) -> None:
        """Read what is new; records the filters drop never reach a lane. A read that
        finds nothing puts the next one ``idle_poll_seconds`` away (real time); a short
        page means the shard is drained for now, so no empty read follows it."""
        if time.monotonic() < self._next_read:
            return
        while True:
            read = self._reader.read(self.settings.batch_size)
            if not read:
                self._next_read = time.monotonic() + self._idle_poll_seconds
                return
            now = self._clock.monotonic()
            with self._lock:
                for record in read:
                    if not self._wanted(record):
                        continue
                    lane = self._lane_for(record)
                    if not lane.pending:
                        lane.first_buffered = now
                    lane.pending.append(record)
            if len(read) < self.settings.batch_size:
                return

    def _wanted(self, record: dict[str, Any]) -> bool:
        """Lambda's event filtering: no filter, or any filter matches."""
        filters = self.settings.filters
        if not filters:
            return True
        visible = self._reader.filtered_view(record)
        return any(matches(f, visible) for f in filters)

    def _due_batches(self) -> list[tuple[_Lane, list[dict[str, Any]]]]:
        now = self._clock.monotonic()
        due: list[tuple[_Lane, list[dict[str, Any]]]] = []
        with self._lock:
            for lane in self._lanes.values():
                if lane.busy or not lane.pending:
                    continue
                full = len(lane.pending) >= self.settings.batch_size
                waited = now - lane.first_buffered >= self.settings.window_seconds
                if full or waited or self._flush or lane.retries or lane.invocations:
                    lane.busy = True
                    due.append(
                        (lane, list(lane.pending[: min(lane.cap, self.settings.batch_size)]))
                    )
        return due

    # --- delivering ----------------------------------------------------------------------

    def _deliver(self, lane: _Lane, batch: list[dict[str, Any]]) -> None:
        try:
            self._attempt(lane, batch)
        finally:
            with self._lock:
                lane.busy = False

    def _attempt(self, lane: _Lane, batch: list[dict[str, Any]]) -> None:
        limit = self.settings.maximum_record_age_seconds
        if lane.invocations and limit >= 0 and self._oldest_age(batch) > limit:
            self._discard(lane, batch, RECORD_TOO_OLD, None, "record older than the maximum age")
            return
        for record in batch:
            self._hop(self._reader.hop(self.name, record, "received"))
        self._hop(f"stream batch → {self.name}: {len(batch)} record(s)")
        event = {"Records": [{k: v for k, v in r.items() if k != _SHARD} for r in batch]}
        started = ActivityLog.clock()
        outcome = self._functions.invoke(self.name, event)
        if self._activity is not None:
            self._activity.invoked(self.name, "dynamodb", len(batch), outcome, started)
        lane.invocations += 1
        if outcome.failed:
            self._on_error(lane, batch, outcome)
            return
        self._hop(f"{self.name} returned {outcome.value}")
        failed_ids = (
            _failed_ids(outcome.value) if self.settings.report_batch_item_failures else None
        )
        if not failed_ids:
            self._done(lane, len(batch))
            if self._duplicate_rate and self._random.random() < self._duplicate_rate:
                self._hop(f"stream batch → {self.name}: {len(batch)} record(s) re-delivered")
                self._functions.invoke(self.name, event)
            return
        sequence = [self._reader.sequence_number(r) for r in batch]
        positions = [i for i, number in enumerate(sequence) if number in failed_ids]
        if len(positions) != len(failed_ids):
            self._on_error(lane, batch, outcome, "batchItemFailures named records not in the batch")
        else:
            self._on_partial(lane, batch, outcome, min(positions), len(positions))

    def _oldest_age(self, batch: list[dict[str, Any]]) -> float:
        return max(self._clock.age(self._reader.arrival(r)) for r in batch)

    def _done(self, lane: _Lane, count: int) -> None:
        with self._lock:
            del lane.pending[:count]
            lane.retries = 0
            lane.invocations = 0
            lane.cap = self.settings.batch_size

    def _on_partial(
        self, lane: _Lane, batch: list[dict[str, Any]], outcome: Outcome, lowest: int, count: int
    ) -> None:
        """Checkpoint before the lowest failure; the rest is retried (one retry)."""
        with self._lock:
            del lane.pending[:lowest]
        retried = batch[lowest:]
        self._hop(f"{self.name}: {count} record(s) failed")
        self._retry_or_discard(lane, retried, outcome, "reported in batchItemFailures")

    def _on_error(
        self,
        lane: _Lane,
        batch: list[dict[str, Any]],
        outcome: Outcome,
        error: str | None = None,
    ) -> None:
        error = error or outcome.error or "function error"
        self._hop(f"{self.name} raised on {len(batch)} record(s): {error}")
        if self.settings.bisect_on_error and len(batch) > 1:
            # Splitting a batch does not consume the retry quota.
            with self._lock:
                lane.cap = max(1, len(batch) // 2)
            return
        self._retry_or_discard(lane, batch, outcome, error)

    def _retry_or_discard(
        self, lane: _Lane, batch: list[dict[str, Any]], outcome: Outcome, error: str
    ) -> None:
        lane.retries += 1
        limit = self.settings.maximum_retry_attempts
        if limit >= 0 and lane.retries > limit:
            self._discard(lane, batch, RETRIES_EXHAUSTED, outcome, error)
        else:
            self._hop(f"{self.name}: retry {lane.retries} of {len(batch)} record(s)")

    def _discard(
        self,
        lane: _Lane,
        batch: list[dict[str, Any]],
        condition: str,
        outcome: Outcome | None,
        error: str,
    ) -> None:
        """Give up on the whole retried batch, as Lambda does, and tell the destination."""
        message = self.on_failure_message(batch, condition, outcome, lane.invocations)
        self._failures.add(self.name, batch, error)
        self._failures.add_message(message)
        for record in batch:
            self._hop(self._reader.hop(self.name, record, "sent to the failure queue"))
        queue = self.settings.on_failure_queue
        if queue and self._destination is not None:
            self._destination(queue, message)
            self._hop(f"{self.name}: {len(batch)} record(s) discarded ({condition}) → {queue}")
        else:
            self._hop(
                f"{self.name}: {len(batch)} record(s) discarded ({condition}), no destination"
            )
        self._done(lane, len(batch))

    def on_failure_message(
        self,
        batch: list[dict[str, Any]],
        condition: str,
        outcome: Outcome | None,
        invocations: int,
    ) -> dict[str, Any]:
        """Lambda's on-failure record for a discarded stream batch (services-dynamodb-errors)."""
        first, last = batch[0], batch[-1]
        reader = self._reader
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if outcome is not None and outcome.failed:
            response["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": outcome.request_id if outcome else "",
                "functionArn": self._functions.arn(self.name),
                "condition": condition,
                "approximateInvokeCount": invocations,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time(), millis=True),
            reader.BATCH_INFO: {
                "shardId": first.get(_SHARD, ""),
                "startSequenceNumber": reader.sequence_number(first),
                "endSequenceNumber": reader.sequence_number(last),
                "approximateArrivalOfFirstRecord": _iso(reader.arrival(first)),
                "approximateArrivalOfLastRecord": _iso(reader.arrival(last)),
                "batchSize": len(batch),
                "streamArn": self._reader.stream_arn,
            },
        }


def _iso(epoch: float, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _raise(future: Future[None]) -> None:
    future.result()


def _failed_ids(response: Any) -> set[str] | None:
    """The reported identifiers; an empty or null list (or response) is full success.
    An entry whose ``itemIdentifier`` is missing, null or empty fails the whole batch
    (services-ddb-batchfailurereporting), shown here as an identifier no record has."""
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures") or []
    ids: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        ids.add(str(identifier) if identifier else "")
    return ids or None
