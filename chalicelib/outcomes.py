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
from datetime import datetime
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
    decision,
    invoice_outcome,
    problem_outcome,
    timed_out,
)
from chalicelib.observability import ORDERS_COMPLETED, ORDERS_TIMED_OUT, count, logger
from chalicelib.store import EventStore


def summary(outcome: Outcome | None) -> dict[str, Any]:
    """What a handler reports about the outcome (its return value, shown locally)."""
    if outcome is None:
        return {"outcome": None}
    return {"outcome": outcome.kind, "invoice": outcome.invoice, "problem": outcome.problem}


class Notifier(Protocol):
    """Tells the customer their order was sent."""

    def order_sent(self, order_id: str, invoice: dict[str, Any]) -> None: ...


class LogNotifier:
    """The default notifier: one structured log line per order sent."""

    def order_sent(self, order_id: str, invoice: dict[str, Any]) -> None:
        logger.info("Order sent", extra={"order_id": order_id, "invoice": invoice})


class OutcomeService:
    """Records invoices and problems, once per order."""

    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        notifier: Notifier | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._required = settings.required_checks
        self._notifier = notifier or LogNotifier()
        self._now = now or clock.now

    def invoice(self, order_id: str) -> Outcome | None:
        """Invoice an approved order (once) and tell the customer (once)."""
        order = self._store.load_order(order_id)
        if order is None:
            logger.warning("invoice requested for an unknown order", extra={"order_id": order_id})
            return None
        outcome = order.outcome
        if outcome is None:
            if decision(order, self._required) != APPROVED:
                logger.info(
                    "order is not approved any more; no invoice", extra={"order_id": order_id}
                )
                return None
            outcome = self._close(order, invoice_outcome(order, self._now()))
        if outcome.kind == INVOICED and outcome.invoice and not order.notified:
            self._notifier.order_sent(order_id, outcome.invoice)
            self._store.mark_notified(order_id, self._now())
        return outcome

    def problem(self, order_id: str) -> Outcome | None:
        """Record the problem of a rejected or timed-out order (once)."""
        order = self._store.load_order(order_id)
        if order is None:
            logger.warning("problem reported for an unknown order", extra={"order_id": order_id})
            return None
        if order.outcome is not None:
            return order.outcome
        now = self._now()
        if decision(order, self._required) == REJECTED:
            return self._close(order, problem_outcome(order, self._required, now, REJECTED))
        if timed_out(order, self._required, now):
            count(ORDERS_TIMED_OUT)
            return self._close(order, problem_outcome(order, self._required, now, TIMED_OUT))
        logger.info("no problem to record", extra={"order_id": order_id})
        return None

    def _close(self, order: Order, outcome: Outcome) -> Outcome:
        stored, created = self._store.close_order(order.order_id, outcome)
        if created:
            count(ORDERS_COMPLETED)
        logger.info(
            "outcome recorded" if created else "outcome already recorded",
            extra={
                "order_id": order.order_id,
                "outcome": stored.kind,
                "invoice": stored.invoice,
                "problem": stored.problem,
            },
        )
        return stored
