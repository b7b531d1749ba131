"""Orders, check results and completion logic: plain Python, no AWS.

An order is *pending* until every required check has reported, *approved* when all of
them passed, *rejected* as soon as one failed. Once an outcome is recorded it is final:
*invoiced*, *rejected* (problem path) or *timed-out* (problem path, checks missing).

Example::

    results = {"In Stock": CheckResult("In Stock", PASSED, at)}
    order = Order("7", results)
    order_status(order, ("Account Check", "In Stock"))  # 'pending'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

PASSED = "passed"
FAILED = "failed"
CHECK_STATUSES = (PASSED, FAILED)
# ``Status`` of an order's declaration item, so the one stream filter passes it too.
DECLARED = "declared"

# The longest reason the API takes, and what events and problem records carry of a longer
# one a direct writer stored (up to DynamoDB's 400 KB item): the full text stays in its item.
MAX_REASON_CHARS = 500

PENDING = "pending"
APPROVED = "approved"
OutcomeKind = Literal["invoiced", "rejected", "timed-out"]
REJECTED: OutcomeKind = "rejected"
INVOICED: OutcomeKind = "invoiced"
TIMED_OUT: OutcomeKind = "timed-out"
OUTCOME_KINDS: tuple[OutcomeKind, ...] = (INVOICED, REJECTED, TIMED_OUT)

# Permanent faults, named by a dead-letter record: the order's own record cannot be read;
# AWS refused its event (e.g. too large); a discarded stream range the stream no longer
# holds.
CORRUPT_ITEM = "corrupt-item"
EVENT_REFUSED = "event-refused"
STREAM_RANGE_LOST = "stream-range-lost"


def format_time(moment: datetime) -> str:
    """UTC, fixed width (years zero-padded), so that string order is time order."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time with an offset (``Z`` allowed); raise ``ValueError``."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time has no UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is outside the calendar in UTC") from None


def content_digest(status: str, reason: str | None) -> str:
    """A short fingerprint of what a result says (not when)."""
    data = f"{status}\x00{reason or ''}".encode()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class CheckResult:
    """One source's result for one order."""

    name: str
    status: str
    occurred_at: datetime
    reason: str | None = None
    recorded_at: datetime | None = None

    @property
    def digest(self) -> str:
        return content_digest(self.status, self.reason)

    @property
    def revision(self) -> str:
        """Total order of results for one check: time first, then content.

        Two different results with the same time still have a fixed winner, so every
        arrival order ends in the same stored result.
        """
        return f"{format_time(self.occurred_at)}|{self.digest}"


@dataclass(frozen=True)
class Declaration:
    """What one order waits for: its checks and, optionally, its own deadline."""

    checks: tuple[str, ...]
    deadline: datetime | None = None
    declared_at: datetime | None = None

    def same_as(self, other: Declaration) -> bool:
        """The same declaration (when it was made does not count)."""
        return set(self.checks) == set(other.checks) and self.deadline == other.deadline


@dataclass(frozen=True)
class Outcome:
    """The final decision for an order, recorded once."""

    kind: OutcomeKind
    at: datetime
    invoice: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None


@dataclass(frozen=True)
class Order:
    """Everything stored for one order.

    ``problems`` names each stored item that could not be read (another writer's item,
    a corrupt field); ``record_corrupt`` says the app's own order record is one of them,
    so its deadline and outcome are unknown and nothing may be decided for it.
    """

    order_id: str
    results: Mapping[str, CheckResult] = field(default_factory=dict)
    outcome: Outcome | None = None
    deadline: datetime | None = None
    notified: bool = False
    notify_lease: datetime | None = None
    problems: tuple[str, ...] = ()
    record_corrupt: bool = False
    parked: str | None = None  # the fault it was dead-lettered for, if it was
    declaration: Declaration | None = None


def first_arrival(results: Iterable[CheckResult]) -> datetime | None:
    """When the first of these results arrived: its ``RecordedAt`` (the API always sets
    it), else its ``OccurredAt`` (a direct writer that leaves ``RecordedAt`` out)."""
    return min((r.recorded_at or r.occurred_at for r in results), default=None)


def failed_checks(order: Order, required: tuple[str, ...]) -> list[str]:
    return [c for c in required if c in order.results and order.results[c].status == FAILED]


def missing_checks(order: Order, required: tuple[str, ...]) -> list[str]:
    return [c for c in required if c not in order.results]


def decision(order: Order, required: tuple[str, ...]) -> str:
    """What the results alone say: ``pending``, ``approved`` or ``rejected``."""
    if failed_checks(order, required):
        return REJECTED
    if missing_checks(order, required):
        return PENDING
    return APPROVED


def order_status(order: Order, required: tuple[str, ...]) -> str:
    """The order's status as users see it; a recorded outcome wins."""
    return order.outcome.kind if order.outcome else decision(order, required)


def is_late(result: CheckResult, outcome: Outcome | None) -> bool:
    """A result stored after the order's outcome was decided."""
    if outcome is None:
        return False
    arrived = result.recorded_at or result.occurred_at
    return arrived > outcome.at


def timed_out(order: Order, required: tuple[str, ...], now: datetime) -> bool:
    """Still pending after its deadline."""
    return (
        order.outcome is None
        and order.deadline is not None
        and now >= order.deadline
        and decision(order, required) == PENDING
    )


def invoice_id(order_id: str) -> str:
    """The same order always gets the same invoice id."""
    return "INV-" + hashlib.sha256(order_id.encode()).hexdigest()[:16].upper()


def invoice_outcome(order: Order, now: datetime) -> Outcome:
    invoice = {"invoiceId": invoice_id(order.order_id), "issuedAt": format_time(now)}
    return Outcome(INVOICED, now, invoice=invoice)


def problem_outcome(
    order: Order, required: tuple[str, ...], now: datetime, kind: OutcomeKind
) -> Outcome:
    """A problem record naming the failed checks (with reasons) or the missing ones."""
    problem: dict[str, Any] = {
        "reason": kind,
        "failed": [
            {"check": c, "reason": (order.results[c].reason or "")[:MAX_REASON_CHARS]}
            for c in failed_checks(order, required)
        ],
        "missing": missing_checks(order, required),
        "recordedAt": format_time(now),
    }
    return Outcome(kind, now, problem=problem)
