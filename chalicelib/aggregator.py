"""The stream aggregator: DynamoDB stream batch in, one aggregated event per order out.

For a batch it keeps only source-event records (foreign or malformed ones are logged and
skipped), groups them by order, reads each order once (one strongly consistent Query),
and publishes one aggregated event per order that is not final yet.

Failures are reported as a partial batch response naming the *last* record of each
order that failed (the Query reads the whole order again, so its later record is enough).
Lambda resumes a shard from the lowest reported record and re-delivers everything after
it, so an order whose last record lies at or after that point is held back rather than
published now and again on the retry. Orders are published in the order of their last
record, and publishing stops at the first call that keeps failing.

Example::

    Aggregator(store, publisher, settings).handle(event["Records"])
    # {"batchItemFailures": [{"itemIdentifier": "4900000000000000000001"}]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib import clock, table
from chalicelib.config import Settings
from chalicelib.domain import CHECK_STATUSES
from chalicelib.events import aggregated_detail, put_events_entry
from chalicelib.observability import (
    EVENTS_RECEIVED,
    ORDERS_PUBLISHED,
    RECORDS_SKIPPED,
    count,
    logger,
)
from chalicelib.publisher import Publisher, chunks
from chalicelib.rules import SOURCE_EVENT_NAMES
from chalicelib.store import EventStore
from chalicelib.timeouts import pending_entry


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

    Anything else (a REMOVE, the app's own ``#order`` record, another writer's item or
    a malformed record) gives ``None``, never an exception.
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


class Aggregator:
    """Turns stream batches into aggregated events."""

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
        ready: list[tuple[_OrderBatch, dict[str, Any]]] = []
        failed: list[_OrderBatch] = []
        for order in orders:
            try:
                entry = self._entry_for(order.order_id)
            except Exception:  # noqa: BLE001 - one order's fault must not fail the batch
                logger.exception("could not read order", extra={"order_id": order.order_id})
                failed.append(order)
                # Every later order has a record after this one: Lambda re-delivers it.
                break
            if entry is not None:
                ready.append((order, entry))
        failed.extend(self._publish(ready))
        return {
            "batchItemFailures": [
                {"itemIdentifier": order.changes[-1].sequence_number}
                for order in sorted(failed, key=lambda o: o.last)
            ]
        }

    def _entry_for(self, order_id: str) -> dict[str, Any] | None:
        order = self._store.load_order(order_id)
        if order is None or not order.results:
            # Nothing stored that follows the item schema: not an order a source reported.
            logger.info("no source event stored for this order", extra={"order_id": order_id})
            return None
        if order.outcome is not None:
            logger.info(
                "order is final; late event stored, not published",
                extra={"order_id": order_id, "status": order.outcome.kind},
            )
            return None
        if order.deadline is None:
            now = self._now()
            deadline, shard = pending_entry(order_id, now, self._settings)
            self._store.open_order(order_id, deadline, shard, now)
        detail = aggregated_detail(order, self._settings.required_checks)
        return put_events_entry(self._settings, detail)

    def _publish(self, ready: list[tuple[_OrderBatch, dict[str, Any]]]) -> list[_OrderBatch]:
        """Publish in order of last record; stop at the first call that keeps failing."""
        for batch in chunks(ready):
            failed_indexes = self._publisher.publish_call([entry for _, entry in batch])
            published = [o for i, (o, _) in enumerate(batch) if i not in failed_indexes]
            count(ORDERS_PUBLISHED, len(published))
            # One line per call, not per order: per-order lines were 40% of the CPU.
            logger.info(
                "aggregated events published",
                extra={"order_ids": [order.order_id for order in published]},
            )
            if failed_indexes:
                return [batch[i][0] for i in failed_indexes]
        return []
