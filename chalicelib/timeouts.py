"""The timeout sweep: a scheduled Query over the sparse index of pending orders.

Only orders that are not done carry a deadline in the ``PendingByDeadline`` index (an
invoiced order stays there until its customer was told), so an idle order costs nothing
and the sweep never scans. Each run pages through every index shard, reading the due
orders concurrently, until all are handled or its time budget (``SWEEP_BUDGET_SECONDS``,
well inside the function's timeout) is spent; the next run goes on where work is left.
For each order past its deadline it re-reads the order and:

* publishes ``status: timed-out`` (with the ``missing`` checks) if checks are still
  missing, which the problem handler turns into a problem record;
* publishes the order's current aggregated event if it is decided but has no outcome
  (a repair: e.g. a publish was lost);
* resumes the customer's notification of an invoiced order whose claim was never
  completed and whose lease ran out;
* parks an order whose own record cannot be read (a dead-letter record) and takes it out
  of the index, so it never blocks the sweep.

Example::

    TimeoutSweep(store, publisher, settings, outcomes).run()   # {'timedOut': 1, ...}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import clock
from chalicelib.config import Settings
from chalicelib.domain import (
    CORRUPT_ITEM,
    EVENT_REFUSED,
    INVOICED,
    PENDING,
    TIMED_OUT,
    Order,
)
from chalicelib.events import aggregated_detail, put_events_entry
from chalicelib.observability import ORDERS_DEAD_LETTERED, count, logger
from chalicelib.policy import timed_out
from chalicelib.publisher import Publisher
from chalicelib.store import EventStore, pending_shard, shard_name

if TYPE_CHECKING:
    from chalicelib.outcomes import OutcomeService

# Orders read at once: DynamoDB answers a Query in a few milliseconds, so a run's time
# goes to waiting; this many in flight keep one function busy (see bench/capacity.py).
READ_CONCURRENCY = 16
PAGE_SIZE = 500


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
        outcomes: OutcomeService,
        now: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._page_size = page_size
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._outcomes = outcomes
        self._now = now or clock.now
        self._monotonic = monotonic

    def run(self) -> dict[str, int]:
        """One sweep over every shard, within the budget. Returns counts of what it did;
        ``incomplete`` is 1 when the budget ran out with due orders left."""
        now = self._now()
        ends = self._monotonic() + self._settings.sweep_budget_seconds
        counts = dict.fromkeys(
            ("due", "timedOut", "republished", "notifications", "parked", "failed", "incomplete"),
            0,
        )
        with ThreadPoolExecutor(READ_CONCURRENCY) as pool:
            for number in range(self._settings.pending_shards):
                start: dict[str, Any] | None = None
                while True:
                    if self._monotonic() >= ends:
                        counts["incomplete"] = 1
                        return counts
                    order_ids, start = self._store.due_orders(
                        shard_name(number), now, start, self._page_size
                    )
                    counts["due"] += len(order_ids)
                    orders = list(pool.map(self._load, order_ids))
                    self._handle(orders, now, counts)
                    if start is None:
                        break
        return counts

    def _load(self, order_id: str) -> Order | None:
        try:
            return self._store.load_order(order_id)
        except Exception:  # noqa: BLE001 - one order's fault must not stop the sweep
            logger.exception("could not read a due order", extra={"order_id": order_id})
            return None

    def _handle(self, orders: list[Order | None], now: datetime, counts: dict[str, int]) -> None:
        policy = self._settings.policy
        entries: list[dict[str, Any]] = []
        owners: list[str] = []
        for order in orders:
            if order is None:
                counts["failed"] += 1
                continue
            if order.record_corrupt:
                self._park(order.order_id, CORRUPT_ITEM, "; ".join(order.problems), unlist=True)
                counts["parked"] += 1
            elif order.outcome is not None:
                if order.outcome.kind == INVOICED and not order.notified:
                    self._resume(order, counts)
            elif (evaluation := policy.evaluate(order)).status == PENDING:
                if timed_out(order, policy, now):
                    detail = aggregated_detail(order, policy, TIMED_OUT, evaluation)
                    logger.info(
                        "order timed out",
                        extra={"order_id": order.order_id, "missing": detail["missing"]},
                    )
                    entries.append(put_events_entry(self._settings, detail))
                    owners.append(order.order_id)
                    counts["timedOut"] += 1
            else:
                logger.info(
                    "re-publishing an order with no outcome", extra={"order_id": order.order_id}
                )
                detail = aggregated_detail(order, policy, evaluation=evaluation)
                entries.append(put_events_entry(self._settings, detail))
                owners.append(order.order_id)
                counts["republished"] += 1
        if entries:
            self._publish(entries, owners, counts)

    def _resume(self, order: Order, counts: dict[str, int]) -> None:
        """Tell the customer of an invoiced order whose claim was never completed."""
        try:
            self._outcomes.resume_notification(order)
        except Exception:  # noqa: BLE001 - retried by the next run; others go on
            logger.exception("could not resume a notification", extra={"order_id": order.order_id})
            counts["failed"] += 1
            return
        counts["notifications"] += 1

    def _publish(
        self, entries: list[dict[str, Any]], owners: list[str], counts: dict[str, int]
    ) -> None:
        """Publish a page's entries, up to READ_CONCURRENCY calls at once."""
        groups = [
            range(start, min(start + 10, len(entries))) for start in range(0, len(entries), 10)
        ]
        with ThreadPoolExecutor(READ_CONCURRENCY) as pool:
            results = list(
                pool.map(lambda g: self._publisher.publish([entries[i] for i in g]), groups)
            )
        for group, result in zip(groups, results, strict=True):
            counts["failed"] += len(result.failed)
            for index, reason in result.rejected.items():
                self._park(owners[group[index]], EVENT_REFUSED, reason, unlist=True)
                counts["parked"] += 1

    def _park(self, order_id: str, fault: str, reason: str, unlist: bool) -> None:
        logger.error(
            "order dead-lettered", extra={"order_id": order_id, "fault": fault, "reason": reason}
        )
        self._store.park(order_id, fault, reason, self._now())
        if unlist:
            self._store.unlist(order_id)
        count(ORDERS_DEAD_LETTERED)
