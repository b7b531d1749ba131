"""The timeout sweep: a scheduled Query over the sparse index of pending orders.

Only orders that are not final carry a deadline in the ``PendingByDeadline`` index, so
an idle order costs nothing and the sweep never scans. For each order past its deadline
the sweep re-reads the order and publishes:

* ``status: timed-out`` (with the ``missing`` checks) if checks are still missing, which
  the problem handler turns into a problem record;
* the order's current aggregated event otherwise (a repair: its outcome was never
  recorded, e.g. because a publish was lost).

Example::

    TimeoutSweep(store, publisher, settings, now=clock.now).run()   # {'timedOut': 1, ...}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.config import Settings
from chalicelib.domain import PENDING, TIMED_OUT, decision
from chalicelib.events import aggregated_detail, put_events_entry
from chalicelib.observability import logger
from chalicelib.publisher import Publisher, chunks
from chalicelib.store import EventStore, pending_shard, shard_name


def pending_entry(order_id: str, now: datetime, settings: Settings) -> tuple[datetime, str]:
    """The deadline and index shard an order gets when it is first seen at ``now``."""
    deadline = now + timedelta(seconds=settings.order_timeout_seconds)
    return deadline, pending_shard(order_id, settings.pending_shards)


class TimeoutSweep:
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

    def run(self) -> dict[str, int]:
        """One sweep over every shard. Returns counts of what it published."""
        now = self._now()
        required = self._settings.required_checks
        entries: list[dict[str, Any]] = []
        counts = {"timedOut": 0, "republished": 0, "failed": 0}
        for number in range(self._settings.pending_shards):
            for order_id in self._store.due_orders(shard_name(number), now):
                order = self._store.load_order(order_id)
                if order is None or order.outcome is not None:
                    continue
                if decision(order, required) == PENDING:
                    detail = aggregated_detail(order, required, status=TIMED_OUT)
                    counts["timedOut"] += 1
                    logger.info(
                        "order timed out",
                        extra={"order_id": order_id, "missing": detail["missing"]},
                    )
                else:
                    detail = aggregated_detail(order, required)
                    counts["republished"] += 1
                    logger.info(
                        "re-publishing an order with no outcome", extra={"order_id": order_id}
                    )
                entries.append(put_events_entry(self._settings, detail))
        for batch in chunks(entries):
            counts["failed"] += len(self._publisher.publish_call(batch))
        return counts
