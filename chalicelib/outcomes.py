"""The targets' work: invoice processing and the problem path, each at most once.

EventBridge delivers at least once and the aggregator re-publishes on every change, so
both handlers re-read the order (one Query) and record the outcome with a conditional
write: the first delivery decides, every later one gets the same stored outcome.

Example::

    service = OutcomeService(store, settings)
    service.invoice("7")   # Outcome(kind='invoiced', invoice={'invoiceId': 'INV-…', …})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib import clock
from chalicelib.config import Settings
from chalicelib.domain import (
    APPROVED,
    INVOICED,
    REJECTED,
    TIMED_OUT,
    Order,
    Outcome,
    invoice_outcome,
)
from chalicelib.observability import (
    DECISION_LATENCY,
    NOTIFICATIONS_SENT,
    ORDERS_COMPLETED,
    ORDERS_TIMED_OUT,
    count,
    logger,
    record_milliseconds,
)
from chalicelib.policy import problem_outcome, timed_out
from chalicelib.store import EventStore, NotifyClaim


def summary(outcome: Outcome | None) -> dict[str, Any]:
    """What a handler reports about the outcome (its return value, shown locally)."""
    if outcome is None:
        return {"outcome": None}
    return {"outcome": outcome.kind, "invoice": outcome.invoice, "problem": outcome.problem}


def decision_latency(order: Order, outcome: Outcome) -> float | None:
    """Milliseconds from the order's last check result (when it was recorded, else when
    it occurred) to its outcome; ``None`` for an order without results."""
    arrivals = [r.recorded_at or r.occurred_at for r in order.results.values()]
    if not arrivals:
        return None
    return (outcome.at - max(arrivals)).total_seconds() * 1000


class Notifier(Protocol):
    """Tells the customer their order was sent.

    ``idempotency_key`` (the invoice id) is the same on every attempt for one order, so a
    real notifier can de-duplicate downstream (e.g. as an email provider's idempotency
    key) should a claim's lease run out while a slow attempt is still going.
    """

    def order_sent(self, order_id: str, invoice: dict[str, Any], idempotency_key: str) -> None: ...


class LogNotifier:
    """The default notifier: one structured log line per order sent."""

    def order_sent(self, order_id: str, invoice: dict[str, Any], idempotency_key: str) -> None:
        logger.info(
            "Order sent",
            extra={"order_id": order_id, "invoice": invoice, "idempotency_key": idempotency_key},
        )


class OutcomeService:
    """Records invoices and problems, once per order, and tells the customer once.

    The customer's notification is claimed with a conditional write (in the same write
    that records the invoice), held for ``NOTIFY_LEASE_SECONDS``, and completed by
    :meth:`EventStore.mark_notified`. Concurrent and repeated deliveries find the claim
    held (or the order told) and do nothing; a claim whose holder died is taken over
    once its lease ran out, by a later delivery or by the timeout sweep
    (:meth:`resume_notification`): the aggregator listed the order in a deadline bucket
    before it published it, and the sweep keeps it listed until it was told.
    """

    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        notifier: Notifier | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._policy = settings.policy
        self._notifier = notifier or LogNotifier()
        self._now = now or clock.now

    def invoice(self, order_id: str) -> Outcome | None:
        """Invoice an approved order (once) and tell the customer (once)."""
        order = self._store.load_order(order_id)
        if order is None:
            logger.warning("invoice requested for an unknown order", extra={"order_id": order_id})
            return None
        if order.record_corrupt:
            logger.error(
                "order record cannot be read; no invoice",
                extra={"order_id": order_id, "problems": list(order.problems)},
            )
            return None
        if order.outcome is not None:
            return self.resume_notification(order)
        if self._policy.evaluate(order).status != APPROVED:
            logger.info("order is not approved any more; no invoice", extra={"order_id": order_id})
            return None
        now = self._now()
        claim = NotifyClaim(now + timedelta(seconds=self._settings.notify_lease_seconds))
        outcome, created = self._close(order, invoice_outcome(order, now), claim)
        if created and outcome.invoice:
            self._notify(order_id, outcome.invoice)
        elif not created:
            return self.resume_notification(replace(order, outcome=outcome))
        return outcome

    def resume_notification(self, order: Order) -> Outcome | None:
        """Tell the customer of an invoiced order that was never told, unless another
        delivery holds the claim. Returns the order's outcome."""
        outcome = order.outcome
        if outcome is None or outcome.kind != INVOICED or not outcome.invoice or order.notified:
            return outcome
        now = self._now()
        if order.notify_lease is not None and order.notify_lease >= now:
            logger.info(
                "notification claimed by another delivery", extra={"order_id": order.order_id}
            )
            return outcome
        lease = now + timedelta(seconds=self._settings.notify_lease_seconds)
        if self._store.claim_notification(order.order_id, now, lease):
            self._notify(order.order_id, outcome.invoice)
        return outcome

    def _notify(self, order_id: str, invoice: dict[str, Any]) -> None:
        try:
            self._notifier.order_sent(order_id, invoice, str(invoice["invoiceId"]))
        except Exception:
            # Nobody was told: give the claim back so Lambda's retry can take it at once.
            self._store.release_notification(order_id)
            raise
        self._store.mark_notified(order_id, self._now())
        count(NOTIFICATIONS_SENT)

    def problem(self, order_id: str) -> Outcome | None:
        """Record the problem of a rejected or timed-out order (once)."""
        order = self._store.load_order(order_id)
        if order is None:
            logger.warning("problem reported for an unknown order", extra={"order_id": order_id})
            return None
        if order.record_corrupt:
            logger.error(
                "order record cannot be read; no problem recorded",
                extra={"order_id": order_id, "problems": list(order.problems)},
            )
            return None
        if order.outcome is not None:
            return order.outcome
        now = self._now()
        if self._policy.evaluate(order).status == REJECTED:
            return self._close(order, problem_outcome(order, self._policy, now, REJECTED))[0]
        if timed_out(order, self._policy, now):
            count(ORDERS_TIMED_OUT)
            return self._close(order, problem_outcome(order, self._policy, now, TIMED_OUT))[0]
        logger.info("no problem to record", extra={"order_id": order_id})
        return None

    def _close(
        self, order: Order, outcome: Outcome, claim: NotifyClaim | None = None
    ) -> tuple[Outcome, bool]:
        stored, created = self._store.close_order(order.order_id, outcome, claim)
        if created:
            count(ORDERS_COMPLETED)
            latency = decision_latency(order, stored)
            if latency is not None:
                record_milliseconds(DECISION_LATENCY, latency)
        logger.info(
            "outcome recorded" if created else "outcome already recorded",
            extra={
                "order_id": order.order_id,
                "outcome": stored.kind,
                "invoice": stored.invoice,
                "problem": stored.problem,
            },
        )
        return stored, created
