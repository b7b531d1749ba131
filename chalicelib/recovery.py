"""Stream recovery: aggregate again the orders of a stream range Lambda discarded.

When the aggregator's stream trigger runs out of retries (``MaximumRetryAttempts`` or
``MaximumRecordAgeInSeconds``), Lambda discards the whole batch and sends its range to
the on-failure queue (a ``DDBStreamBatchInfo`` message: shard id, first and last sequence
numbers, stream ARN). The stream keeps records for 24 hours, so this reads the range back
by sequence number, collects the orders of its source events and runs them through the
aggregator again: an order that sources wrote directly still gets its deadline and its
event, and no order is left pending for ever.

A range the stream no longer holds is parked as a dead-letter record
(``stream-range-lost``) naming it. A message that still fails is reported back to SQS
(``batchItemFailures``); after the queue's ``maxReceiveCount`` it moves to its own DLQ.

Example::

    StreamRecovery(streams_client, aggregator, store).handle(sqs_event["Records"])
    # {"batchItemFailures": []}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import clock
from chalicelib.aggregator import Aggregator, source_change
from chalicelib.domain import STREAM_RANGE_LOST
from chalicelib.observability import ORDERS_DEAD_LETTERED, ORDERS_RECOVERED, count, logger
from chalicelib.store import EventStore

# Error codes of a range the stream no longer holds (older than 24 hours, shard gone).
LOST_RANGE_ERRORS = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})
# Pages read before giving up on reaching the range's end (an open shard's tail).
MAX_PAGES = 1000
PAGE_LIMIT = 1000


class MalformedMessage(ValueError):
    """A failure-queue message that is not Lambda's stream on-failure record."""


@dataclass(frozen=True)
class StreamRange:
    """A discarded range of one shard: ``DDBStreamBatchInfo``."""

    stream_arn: str
    shard_id: str
    start: str
    end: str

    @classmethod
    def from_message(cls, body: str) -> StreamRange:
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            fields = [info[k] for k in ("streamArn", "shardId", "startSequenceNumber")]
            end = info.get("endSequenceNumber") or fields[2]
            if not all(isinstance(v, str) and v for v in (*fields, end)):
                raise ValueError("empty field")
        except (ValueError, KeyError, TypeError) as err:
            raise MalformedMessage(f"not a stream on-failure message: {err!r}") from None
        return cls(fields[0], fields[1], fields[2], end)

    @property
    def label(self) -> str:
        """The partition key of this range's dead-letter record."""
        return f"#stream-range/{self.shard_id}/{self.start}-{self.end}"


class StreamRecovery:
    """Consumes the stream failure queue (``on_sqs_message``)."""

    def __init__(
        self,
        streams: Any,
        aggregator: Aggregator,
        store: EventStore,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._streams = streams
        self._aggregator = aggregator
        self._store = store
        self._now = now or clock.now

    def handle(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Process SQS messages; return SQS's partial batch response."""
        failures = []
        for record in records:
            message_id = str(record.get("messageId", ""))
            try:
                done = self._recover(StreamRange.from_message(str(record.get("body", ""))))
            except Exception:  # noqa: BLE001 - one message's fault must not fail the rest
                logger.exception(
                    "could not recover a stream range", extra={"message_id": message_id}
                )
                done = False
            if not done:
                failures.append({"itemIdentifier": message_id})
        return {"batchItemFailures": failures}

    def _recover(self, span: StreamRange) -> bool:
        """True when every order of the range was published (or the range was parked)."""
        try:
            order_ids = self.orders_in(span)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in LOST_RANGE_ERRORS:
                raise
            reason = f"the stream no longer holds {span.shard_id} {span.start}..{span.end}"
            logger.error("stream range lost", extra={"range": span.label, "error": str(err)})
            self._store.park(span.label, STREAM_RANGE_LOST, reason, self._now())
            count(ORDERS_DEAD_LETTERED)
            return True
        failed = self._aggregator.aggregate(order_ids)
        count(ORDERS_RECOVERED, len(order_ids) - len(failed))
        logger.info(
            "stream range aggregated again",
            extra={"range": span.label, "order_ids": order_ids, "failed": sorted(failed)},
        )
        return not failed

    def orders_in(self, span: StreamRange) -> list[str]:
        """The orders whose source events lie in the range, in stream order."""
        iterator: str | None = self._streams.get_shard_iterator(
            StreamArn=span.stream_arn,
            ShardId=span.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=span.start,
        )["ShardIterator"]
        end = int(span.end)
        orders: dict[str, None] = {}
        for _ in range(MAX_PAGES):
            if iterator is None:
                break
            page = self._streams.get_records(ShardIterator=iterator, Limit=PAGE_LIMIT)
            records = page.get("Records", [])
            for position, record in enumerate(records):
                if int(record["dynamodb"]["SequenceNumber"]) > end:
                    return list(orders)
                change = source_change(record, position)
                if change is not None:
                    orders.setdefault(change.order_id)
            iterator = page.get("NextShardIterator") if records else None
        return list(orders)
