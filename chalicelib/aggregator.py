"""The stream aggregator: DynamoDB stream batch in, one aggregated event per order out.

For a batch it keeps only source-event records (foreign or malformed ones are logged and
skipped), groups them by order, reads each order once (one strongly consistent Query),
and publishes one aggregated event per order that is not final yet.

One order's fault never holds up another:

* a **permanent** fault (the app's order record cannot be read, the event is too large
  for PutEvents) parks the order in a dead-letter record (:meth:`EventStore.park`) and
  the batch goes on;
* a **transient** fault (throttling, timeouts) is reported in the partial batch response
  with the order's *last* record (the Query reads the whole order again, so that record
  is enough). Lambda resumes from the lowest reported record and re-delivers everything
  after it, so other orders with later records are published now and possibly again on
  the retry; the targets are idempotent. Nothing is withheld.

Before any event goes out, every order about to be published is listed, with its
deadline, in one **deadline bucket** item for the batch (:meth:`EventStore.put_bucket`,
base table, no index): the timeout sweep reads it back when the deadline comes. If that
write fails, nothing is published and every order of the batch is reported failed, so
Lambda retries the batch: no order is published without being listed.

If the retries run out, Lambda discards the batch and sends its range to the stream
failure queue, where :mod:`chalicelib.recovery` reads it back and aggregates again.

Example::

    Aggregator(store, publisher, settings).handle(event["Records"])
    # {"batchItemFailures": [{"itemIdentifier": "4900000000000000000001"}]}
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import clock, table
from chalicelib.config import Settings
from chalicelib.domain import CHECK_STATUSES, CORRUPT_ITEM, DECLARED, EVENT_REFUSED, Order
from chalicelib.events import aggregated_detail, put_events_entry
from chalicelib.observability import (
    EVENTS_RECEIVED,
    ORDERS_DEAD_LETTERED,
    ORDERS_PUBLISHED,
    RECORDS_SKIPPED,
    count,
    logger,
)
from chalicelib.policy import deadline_of
from chalicelib.publisher import Publisher
from chalicelib.rules import SOURCE_EVENT_NAMES
from chalicelib.store import EventStore, pending_shard

# Orders listed in one deadline bucket item (~100 bytes each, far below the 400 KB item
# limit); a batch has at most 100 records, so one item, but a recovered range may hold more.
BUCKET_MAX_ORDERS = 1000


@dataclass(frozen=True)
class SourceChange:
    """A stream record that changed a source event of an order."""

    order_id: str
    sequence_number: str
    position: int


def _field(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]…``, or ``None`` where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def source_change(record: Mapping[str, Any], position: int) -> SourceChange | None:
    """The change a stream record makes, or ``None`` if it is not a source event.

    A source event is a check result or the order's declaration (sort key
    ``#declaration``, status ``declared``): a declaration written after the results
    changes what the order waits for. Anything else (a REMOVE, the app's own ``#order``
    record, another writer's item or a malformed record) gives ``None``, never an
    exception.
    """
    if _field(record, "eventName") not in SOURCE_EVENT_NAMES:
        return None
    data = _field(record, "dynamodb")
    order_id = _field(data, "Keys", table.PARTITION_KEY, "S")
    event_name = _field(data, "Keys", table.SORT_KEY, "S")
    status = _field(data, "NewImage", table.STATUS, "S")
    sequence_number = _field(data, "SequenceNumber")
    if not all(isinstance(v, str) and v for v in (order_id, event_name, sequence_number)):
        return None
    if event_name == table.DECLARATION_RECORD:
        return SourceChange(order_id, sequence_number, position) if status == DECLARED else None
    if event_name.startswith("#") or status not in CHECK_STATUSES:
        return None
    return SourceChange(order_id, sequence_number, position)


@dataclass
class _OrderBatch:
    order_id: str
    changes: list[SourceChange] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.changes[0].position

    @property
    def last(self) -> int:
        return self.changes[-1].position


def group_by_order(records: Sequence[Mapping[str, Any]]) -> list[_OrderBatch]:
    """Source changes grouped by order, in the order each order first appears."""
    groups: dict[str, _OrderBatch] = {}
    for position, record in enumerate(records):
        change = source_change(record, position)
        if change is None:
            count(RECORDS_SKIPPED)
            logger.info(
                "skipped a record that is not a source event",
                extra={"order_id": _order_id_of(record), "event_name": _field(record, "eventName")},
            )
            continue
        groups.setdefault(change.order_id, _OrderBatch(change.order_id)).changes.append(change)
    return list(groups.values())


def _order_id_of(record: Mapping[str, Any]) -> Any:
    return _field(record, "dynamodb", "Keys", table.PARTITION_KEY, "S")


@dataclass
class _Ready:
    order: Order
    entry: dict[str, Any]


class Aggregator:
    """Turns stream batches (or a list of order ids) into aggregated events."""

    def __init__(
        self,
        store: EventStore,
        publisher: Publisher,
        settings: Settings,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._now = now or clock.now

    def handle(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Process one batch; return Lambda's partial batch response."""
        orders = sorted(group_by_order(records), key=lambda o: o.last)
        count(EVENTS_RECEIVED, sum(len(o.changes) for o in orders))
        failed = self.aggregate([order.order_id for order in orders])
        return {
            "batchItemFailures": [
                {"itemIdentifier": order.changes[-1].sequence_number}
                for order in orders
                if order.order_id in failed
            ]
        }

    def aggregate(self, order_ids: Sequence[str]) -> set[str]:
        """Read, list (deadline bucket) and publish each order; return the ids that
        failed transiently."""
        failed: set[str] = set()
        ready: list[_Ready] = []
        for order_id in order_ids:
            try:
                item = self._ready(order_id)
            except Exception:  # noqa: BLE001 - one order's fault must not fail the batch
                logger.exception("could not read order", extra={"order_id": order_id})
                failed.add(order_id)
                continue
            if item is not None:
                ready.append(item)
        try:
            self._list(ready)
        except Exception:  # noqa: BLE001 - not listed: publish nothing, Lambda retries
            logger.exception(
                "could not write the batch's deadline bucket",
                extra={"order_ids": [item.order.order_id for item in ready]},
            )
            return failed | {item.order.order_id for item in ready}
        return failed | self._publish(ready)

    def _list(self, ready: list[_Ready]) -> None:
        """One deadline bucket for the orders about to be published (per 1,000)."""
        deadlines = {
            item.order.order_id: deadline
            for item in ready
            if (deadline := deadline_of(item.order)) is not None
        }
        ids = list(deadlines)
        for start in range(0, len(ids), BUCKET_MAX_ORDERS):
            bucket_id = uuid.uuid4().hex
            shard = pending_shard(bucket_id, self._settings.pending_shards)
            chunk = {
                order_id: deadlines[order_id] for order_id in ids[start : start + BUCKET_MAX_ORDERS]
            }
            self._store.put_bucket(shard, chunk, bucket_id)

    def _ready(self, order_id: str) -> _Ready | None:
        order = self._store.load_order(order_id)
        if order is None or not (order.results or order.record_corrupt or order.declaration):
            # Nothing stored that follows the item schema: not an order a source reported.
            logger.info("no source event stored for this order", extra={"order_id": order_id})
            return None
        if order.record_corrupt:
            self._park(order_id, CORRUPT_ITEM, "; ".join(order.problems))
            return None
        if order.outcome is not None:
            logger.info(
                "order is final; late event stored, not published",
                extra={"order_id": order_id, "status": order.outcome.kind},
            )
            return None
        if deadline_of(order) is None and not order.results:
            # Declared with no deadline: the clock starts with the first result.
            return None
        detail = aggregated_detail(order, self._settings.policy)
        return _Ready(order, put_events_entry(self._settings, detail))

    def _publish(self, ready: list[_Ready]) -> set[str]:
        """Publish every ready order; park the ones AWS refuses; return those that failed."""
        if not ready:
            return set()
        result = self._publisher.publish([item.entry for item in ready])
        failed = {ready[i].order.order_id for i in result.failed}
        for index, reason in result.rejected.items():
            try:
                self._park(ready[index].order.order_id, EVENT_REFUSED, reason)
            except Exception:  # noqa: BLE001 - not parked: retry the order instead
                logger.exception(
                    "could not park order", extra={"order_id": ready[index].order.order_id}
                )
                failed.add(ready[index].order.order_id)
        published = [
            item.order
            for i, item in enumerate(ready)
            if i not in result.rejected and item.order.order_id not in failed
        ]
        count(ORDERS_PUBLISHED, len(published))
        # One line per call, not per order: per-order lines were 40% of the CPU.
        logger.info(
            "aggregated events published",
            extra={"order_ids": [order.order_id for order in published], "bytes": result.bytes},
        )
        for order in published:
            if order.parked is not None:
                self._unpark(order.order_id)
        return failed

    def _unpark(self, order_id: str) -> None:
        """Remove a dead-letter record once its order went out (again next time if not)."""
        try:
            self._store.unpark(order_id)
        except Exception:  # noqa: BLE001 - the event is out; the record goes next time
            logger.exception("could not remove a dead-letter record", extra={"order_id": order_id})

    def _park(self, order_id: str, fault: str, reason: str) -> None:
        logger.error(
            "order dead-lettered", extra={"order_id": order_id, "fault": fault, "reason": reason}
        )
        self._store.park(order_id, fault, reason, self._now())
        count(ORDERS_DEAD_LETTERED)
