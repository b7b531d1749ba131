"""The timeout sweep: a scheduled Query over the due deadline buckets.

Every order the aggregator publishes is listed, with its deadline, in its batch's
deadline bucket (a base-table item of the partition ``#deadlines#<shard>``, see
:mod:`chalicelib.table`), so the sweep finds what is due with a Query per shard and
never scans. Each run pages through every shard's due buckets, until all are handled or
its time budget (``SWEEP_BUDGET_SECONDS``, well inside the function's timeout) is spent;
the next run goes on where work is left. For a due bucket it:

* drops, with one ``BatchGetItem`` of their order records, the orders that are done (an
  outcome, and for an invoice the customer told): most of them;
* reads each other order in full (one Query, several in flight) and:

  * publishes ``status: timed-out`` (with the ``missing`` checks) if checks are still
    missing past the deadline, which the problem handler turns into a problem record;
  * publishes the order's current aggregated event if it is decided but has no outcome
    (a repair: e.g. a publish was lost);
  * resumes the customer's notification of an invoiced order whose claim was never
    completed and whose lease ran out;
  * parks an order whose own record cannot be read (a dead-letter record);

* lists again, in a new bucket, every order not done yet: at its deadline if it is not
  due, when its lease ends, else at the next run (:data:`RECHECK_SECONDS`) to see that
  its outcome or notification was recorded; and only then deletes the bucket. A run that
  stops between acting and the delete leaves the bucket, so the next run acts again: the
  targets' conditional writes make that harmless (one outcome, one "Order sent").

An order listed in several buckets (it was published from several batches) is handled
once per run. Orders opened before the deadline buckets (older tables) are still found
through the sparse index ``PendingByDeadline`` and handled the same way.

Example::

    TimeoutSweep(store, publisher, settings, outcomes).run()   # {'timedOut': 1, ...}
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from chalicelib.policy import deadline_of, timed_out
from chalicelib.publisher import Publisher
from chalicelib.store import DeadlineBucket, EventStore, shard_name

if TYPE_CHECKING:
    from chalicelib.outcomes import OutcomeService

# Orders read at once: DynamoDB answers a Query in a few milliseconds, so a run's time
# goes to waiting; this many in flight keep one function busy (see bench/capacity.py).
READ_CONCURRENCY = 16
# Index entries per page (orders opened before the deadline buckets).
PAGE_SIZE = 500
# Buckets per Query page (each lists up to one batch's orders: 100 or fewer).
BUCKET_PAGE = 10
# An order acted on (timed out, re-published, notification resumed) is looked at again
# this much later, by the next run, to see its outcome or notification recorded.
RECHECK_SECONDS = 60
# The orders a page lists again go into one bucket per this many seconds of deadline.
SLOT_SECONDS = 60

COUNTS = (
    "due",
    "timedOut",
    "republished",
    "notifications",
    "parked",
    "failed",
    "incomplete",
    "settled",  # due orders dropped by their order record alone
    "buckets",  # due buckets deleted
)


@dataclass(frozen=True)
class _Loaded:
    order_id: str
    order: Order | None
    ok: bool = True


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
        bucket_page: int = BUCKET_PAGE,
    ) -> None:
        self._page_size = page_size
        self._bucket_page = bucket_page
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._outcomes = outcomes
        self._now = now or clock.now
        self._monotonic = monotonic

    def run(self) -> dict[str, int]:
        """One sweep over every shard, within the budget. Returns counts of what it did;
        ``incomplete`` is 1 when the budget ran out with due work left."""
        now = self._now()
        ends = self._monotonic() + self._settings.sweep_budget_seconds
        counts = dict.fromkeys(COUNTS, 0)
        seen: set[str] = set()
        with ThreadPoolExecutor(READ_CONCURRENCY) as pool:
            for number in range(self._settings.pending_shards):
                if not self._sweep_buckets(shard_name(number), now, ends, counts, seen, pool):
                    return counts
            for number in range(self._settings.pending_shards):
                if not self._sweep_index(shard_name(number), now, ends, counts, pool):
                    return counts
        return counts

    def _sweep_buckets(
        self,
        shard: str,
        now: datetime,
        ends: float,
        counts: dict[str, int],
        seen: set[str],
        pool: ThreadPoolExecutor,
    ) -> bool:
        """Every due bucket of ``shard``, page by page; False when the budget ran out."""

        def settle(buckets: list[DeadlineBucket]) -> None:
            if buckets:
                self._settle(shard, buckets, now, counts, seen, pool)

        return self._pages(
            lambda start: self._store.due_buckets(shard, now, start, self._bucket_page),
            settle,
            ends,
            counts,
        )

    def _sweep_index(
        self, shard: str, now: datetime, ends: float, counts: dict[str, int], pool: Any
    ) -> bool:
        """Orders opened before the deadline buckets: due index entries of ``shard``."""

        def handle(order_ids: list[str]) -> None:
            counts["due"] += len(order_ids)
            self._handle(list(pool.map(self._load, order_ids)), now, counts)

        return self._pages(
            lambda start: self._store.due_orders(shard, now, start, self._page_size),
            handle,
            ends,
            counts,
        )

    def _pages(
        self,
        fetch: Callable[[dict[str, Any] | None], tuple[list[Any], dict[str, Any] | None]],
        handle: Callable[[list[Any]], None],
        ends: float,
        counts: dict[str, int],
    ) -> bool:
        """Fetch and handle page after page until the last one (True) or until the budget
        runs out first (False, and ``incomplete`` is counted)."""
        start: dict[str, Any] | None = None
        while True:
            if self._monotonic() >= ends:
                counts["incomplete"] = 1
                return False
            page, start = fetch(start)
            handle(page)
            if start is None:
                return True

    def _settle(
        self,
        shard: str,
        buckets: list[DeadlineBucket],
        now: datetime,
        counts: dict[str, int],
        seen: set[str],
        pool: ThreadPoolExecutor,
    ) -> None:
        """Handle one page of due buckets: act on their due orders, list again what is
        not done, then delete the buckets."""
        kept: dict[str, datetime] = {}
        due: dict[str, None] = {}
        for bucket in buckets:
            for order_id, deadline in bucket.deadlines.items():
                if deadline > now:
                    kept[order_id] = min(deadline, kept.get(order_id, deadline))
                elif order_id not in seen:
                    due.setdefault(order_id)
        seen.update(due)
        counts["due"] += len(due)
        done = self._settled(list(due), pool)
        counts["settled"] += len(done)
        loaded = list(pool.map(self._load, [o for o in due if o not in done]))
        for order_id, until in self._handle(loaded, now, counts).items():
            if until is not None:
                kept[order_id] = min(until, kept.get(order_id, until))
        try:
            self._relist(shard, kept)
        except Exception:  # noqa: BLE001 - buckets kept: the next run handles them again
            logger.exception("could not list orders again", extra={"order_ids": sorted(kept)})
            counts["failed"] += 1
            return
        deleted = list(pool.map(self._delete, buckets))
        counts["buckets"] += sum(deleted)
        counts["failed"] += len(deleted) - sum(deleted)

    def _delete(self, bucket: DeadlineBucket) -> bool:
        try:
            self._store.delete_bucket(bucket)
        except Exception:  # noqa: BLE001 - handled again by the next run: harmless
            logger.exception(
                "could not delete a deadline bucket", extra={"bucket": bucket.sort_key}
            )
            return False
        return True

    def _settled(self, order_ids: list[str], pool: ThreadPoolExecutor) -> set[str]:
        """The done ones among ``order_ids``: one BatchGetItem per 100, several in flight."""
        chunks = [order_ids[i : i + 100] for i in range(0, len(order_ids), 100)]
        return set().union(*pool.map(self._settled_chunk, chunks))

    def _settled_chunk(self, order_ids: list[str]) -> set[str]:
        try:
            return self._store.settled(order_ids)
        except Exception:  # noqa: BLE001 - each order is then read in full instead
            logger.exception("could not read the due orders' records")
            return set()

    def _relist(self, shard: str, kept: dict[str, datetime]) -> None:
        """Write the orders still to be looked at, one bucket per deadline slot."""
        slots: dict[int, dict[str, datetime]] = {}
        for order_id, until in kept.items():
            slots.setdefault(int(until.timestamp()) // SLOT_SECONDS, {})[order_id] = until
        for _, deadlines in sorted(slots.items()):
            self._store.put_bucket(shard, deadlines, uuid.uuid4().hex)

    def _load(self, order_id: str) -> _Loaded:
        try:
            return _Loaded(order_id, self._store.load_order(order_id))
        except Exception:  # noqa: BLE001 - one order's fault must not stop the sweep
            logger.exception("could not read a due order", extra={"order_id": order_id})
            return _Loaded(order_id, None, ok=False)

    def _handle(
        self, loaded: list[_Loaded], now: datetime, counts: dict[str, int]
    ) -> dict[str, datetime | None]:
        """Act on each due order; return, per order, when to look at it again (``None``:
        it needs nothing more from the sweep)."""
        policy = self._settings.policy
        recheck = now + timedelta(seconds=RECHECK_SECONDS)
        again: dict[str, datetime | None] = {}
        entries: list[dict[str, Any]] = []
        owners: list[str] = []
        for item in loaded:
            order = item.order
            again[item.order_id] = None
            if order is None:
                if not item.ok:
                    counts["failed"] += 1
                    again[item.order_id] = recheck
                continue
            if order.record_corrupt:
                self._park(order.order_id, CORRUPT_ITEM, "; ".join(order.problems))
                counts["parked"] += 1
            elif order.outcome is not None:
                if order.outcome.kind == INVOICED and not order.notified:
                    again[order.order_id] = self._resume(order, now, recheck, counts)
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
                    again[order.order_id] = recheck
                else:
                    again[order.order_id] = deadline_of(order)
            else:
                logger.info(
                    "re-publishing an order with no outcome", extra={"order_id": order.order_id}
                )
                detail = aggregated_detail(order, policy, evaluation=evaluation)
                entries.append(put_events_entry(self._settings, detail))
                owners.append(order.order_id)
                counts["republished"] += 1
                again[order.order_id] = recheck
        if entries:
            for order_id in self._publish(entries, owners, counts):
                again[order_id] = None
        return again

    def _resume(
        self, order: Order, now: datetime, recheck: datetime, counts: dict[str, int]
    ) -> datetime:
        """Tell the customer of an invoiced order whose claim was never completed; return
        when to look at the order again."""
        if order.notify_lease is not None and order.notify_lease >= now:
            return order.notify_lease  # another delivery holds the claim until then
        try:
            self._outcomes.resume_notification(order)
        except Exception:  # noqa: BLE001 - retried by the next run; others go on
            logger.exception("could not resume a notification", extra={"order_id": order.order_id})
            counts["failed"] += 1
            return recheck
        counts["notifications"] += 1
        return recheck

    def _publish(
        self, entries: list[dict[str, Any]], owners: list[str], counts: dict[str, int]
    ) -> list[str]:
        """Publish a page's entries, up to READ_CONCURRENCY calls at once; return the
        orders parked because AWS refused their event."""
        groups = [
            range(start, min(start + 10, len(entries))) for start in range(0, len(entries), 10)
        ]
        with ThreadPoolExecutor(READ_CONCURRENCY) as pool:
            results = list(
                pool.map(lambda g: self._publisher.publish([entries[i] for i in g]), groups)
            )
        parked = []
        for group, result in zip(groups, results, strict=True):
            counts["failed"] += len(result.failed)
            for index, reason in result.rejected.items():
                self._park(owners[group[index]], EVENT_REFUSED, reason)
                parked.append(owners[group[index]])
                counts["parked"] += 1
        return parked

    def _park(self, order_id: str, fault: str, reason: str) -> None:
        logger.error(
            "order dead-lettered", extra={"order_id": order_id, "fault": fault, "reason": reason}
        )
        self._store.park(order_id, fault, reason, self._now())
        # An order opened before the deadline buckets leaves the index (no-op otherwise).
        self._store.unlist(order_id)
        count(ORDERS_DEAD_LETTERED)
