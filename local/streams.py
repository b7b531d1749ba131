"""DynamoDB stream → ``on_dynamodb_record`` handlers, with Lambda's semantics.

:class:`StreamReader` reads a table's stream shard by shard and shapes each record as
Lambda delivers it (``eventSourceARN``, numeric ``ApproximateCreationDateTime`` …).
:class:`StreamMapping` plays the event source mapping: batches of ``batch_size`` after
the batching window, in stream order; an exception splits the batch and retries it
(bisect), a ``batchItemFailures`` response resumes from the lowest failed record, and a
record that still fails after ``max_attempts`` goes to the :class:`FailureQueue` while
the shard moves on. Records that match none of the mapping's ``filters`` (Lambda's
``FilterCriteria``) are dropped before batching, as Lambda does.

Example::

    reader = StreamReader(streams_client, stream_arn, region="us-east-1")
    mapping = StreamMapping("aggregator", handler, reader, batch_size=100, failures=queue)
    while mapping.step():
        pass
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]
Hop = Callable[[str], None]


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
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
    return shaped


def describe_record(record: Mapping[str, Any]) -> str:
    """``[order 7] source event INSERT In Stock = passed``: one line per record."""
    data = record.get("dynamodb") or {}
    keys = [str(next(iter(v.values()), "?")) for v in (data.get("Keys") or {}).values()]
    status = ((data.get("NewImage") or {}).get("Status") or {}).get("S")
    line = f"[order {keys[0] if keys else '-'}] source event {record.get('eventName')}"
    line += "".join(f" {key}" for key in keys[1:])
    return line + (f" = {status}" if status else "")


class StreamReader:
    """Reads new records of one stream, all shards, oldest first."""

    def __init__(
        self, client: Any, stream_arn: str, region: str, position: str = "TRIM_HORIZON"
    ) -> None:
        self.stream_arn = stream_arn
        self._client = client
        self._region = region
        self._position = position
        self._iterators: dict[str, str | None] = {}
        self._shards_checked = 0.0

    def _refresh_shards(self) -> None:
        """Pick up new shards, at most once a second (DescribeStream is not free)."""
        if time.monotonic() - self._shards_checked < 1.0:
            return
        self._shards_checked = time.monotonic()
        description = self._client.describe_stream(StreamArn=self.stream_arn)
        for shard in description["StreamDescription"].get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=self._position
                )["ShardIterator"]

    def read(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records not read before."""
        self._refresh_shards()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in self._iterators.items():
            if iterator is None or len(records) >= limit:
                continue
            page = self._client.get_records(ShardIterator=iterator, Limit=limit - len(records))
            self._iterators[shard_id] = page.get("NextShardIterator")
            records.extend(
                lambda_record(r, self.stream_arn, self._region) for r in page.get("Records", [])
            )
        return records


@dataclass
class FailureQueue:
    """Records a mapping gave up on (Lambda's on-failure destination)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, function: str, records: list[dict[str, Any]], error: str) -> None:
        with self._lock:
            for record in records:
                self.entries.append({"function": function, "error": error, "record": record})


class StreamMapping:
    """One ``on_dynamodb_record`` handler fed from one stream."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        reader: StreamReader,
        batch_size: int,
        failures: FailureQueue,
        window_seconds: float = 0.0,
        max_attempts: int = 3,
        on_hop: Hop | None = None,
        filters: list[Any] | None = None,
    ) -> None:
        self.name = name
        self._filters = filters or []
        self._handler = handler
        self._reader = reader
        self._batch_size = batch_size
        self._failures = failures
        self._window = window_seconds
        self._max_attempts = max_attempts
        self._hop = on_hop or (lambda line: None)
        self._pending: list[dict[str, Any]] = []
        self._first_buffered = 0.0
        self._cap = batch_size
        self._attempts = 0
        self._failing: str | None = None

    @property
    def idle(self) -> bool:
        return not self._pending

    def flush_window(self) -> None:
        """Let the records buffered so far go without waiting for the batching window."""
        self._first_buffered = 0.0

    def step(self) -> bool:
        """Deliver at most one batch. Returns whether anything was delivered."""
        self._fill()
        if not self._pending:
            return False
        full = len(self._pending) >= self._batch_size
        if not full and time.monotonic() - self._first_buffered < self._window:
            return False
        batch = self._pending[: min(self._cap, self._batch_size)]
        self._deliver(batch)
        return True

    def _fill(self) -> None:
        """Read until the batch is full or the stream has nothing new. Records the
        filters drop do not count, so a read that is all filtered out reads again."""
        while len(self._pending) < self._batch_size:
            read = self._reader.read(self._batch_size - len(self._pending))
            if not read:
                return
            fresh = [r for r in read if self._wanted(r)]
            if fresh and not self._pending:
                self._first_buffered = time.monotonic()
            self._pending.extend(fresh)

    def _wanted(self, record: dict[str, Any]) -> bool:
        """Lambda's event filtering: no filter, or any filter matches."""
        from local.eventbridge import matches

        return not self._filters or any(matches(f, record) for f in self._filters)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for record in batch:
            self._hop(describe_record(record))
        self._hop(f"stream batch → {self.name}: {len(batch)} record(s)")
        try:
            response = self._handler({"Records": batch}, None)
        except Exception as err:  # noqa: BLE001 - a handler's crash is data here
            self._on_error(batch, f"{type(err).__name__}: {err}")
            return
        self._hop(f"{self.name} returned {response}")
        failed_ids = _failed_ids(response)
        positions = [
            i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed_ids
        ]
        if not failed_ids:
            self._done(len(batch))
        elif not positions:
            self._on_error(batch, "batchItemFailures named records not in the batch")
        else:
            self._on_partial(batch, positions)

    def _done(self, count: int) -> None:
        del self._pending[:count]
        self._attempts = 0
        self._failing = None
        self._cap = self._batch_size

    def _on_partial(self, batch: list[dict[str, Any]], positions: list[int]) -> None:
        """Checkpoint before the lowest failure; retry from there."""
        lowest = min(positions)
        del self._pending[:lowest]
        head = batch[lowest]["dynamodb"]["SequenceNumber"]
        if head != self._failing:
            self._failing, self._attempts = head, 0
        self._attempts += 1
        self._hop(f"{self.name}: {len(positions)} record(s) failed, retry {self._attempts}")
        if self._attempts >= self._max_attempts:
            failed = [batch[i] for i in positions]
            self._failures.add(self.name, failed, "reported in batchItemFailures")
            for record in failed:
                self._hop(f"{describe_record(record)}: sent to the failure queue")
            ids = {r["dynamodb"]["SequenceNumber"] for r in failed}
            self._pending = [r for r in self._pending if r["dynamodb"]["SequenceNumber"] not in ids]
            self._attempts = 0

    def _on_error(self, batch: list[dict[str, Any]], error: str) -> None:
        """Bisect on error; a single record that keeps failing is given up."""
        self._hop(f"{self.name} raised on {len(batch)} record(s): {error}")
        if len(batch) > 1:
            self._cap = max(1, len(batch) // 2)
            return
        self._attempts += 1
        if self._attempts >= self._max_attempts:
            self._failures.add(self.name, batch, error)
            self._hop(f"{describe_record(batch[0])}: sent to the failure queue")
            self._done(1)


def _failed_ids(response: Any) -> set[str]:
    if not isinstance(response, dict):
        return set()
    return {
        str(item.get("itemIdentifier"))
        for item in response.get("batchItemFailures") or []
        if isinstance(item, dict)
    }
