"""An order's whole story from its stored items: pure logic, no AWS.

:func:`order_story` turns the items of one order (``EventStore.order_items``) into the
view ``inspect`` prints: a timeline oldest first (each check's result, the aggregator
opening the order with its deadline, the outcome, the notification, a dead-letter
record), what the order still waits for, and what cannot be read, never an exception.

Example::

    story = order_story("7", items, ("Account Check", "In Stock"), now)
    story["status"], story["waitingFor"]   # 'pending', [{'step': 'check', ...}]
    print("\\n".join(render_story(story)))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib import table
from chalicelib.domain import (
    APPROVED,
    INVOICED,
    REJECTED,
    STREAM_RANGE_LOST,
    Order,
    decision,
    format_time,
    is_late,
    missing_checks,
    order_status,
    parse_time,
)
from chalicelib.store import order_from_items

UNKNOWN = "unknown"
# Characters of a reason shown in human-readable output (JSON carries it whole).
SHOWN_REASON_CHARS = 120


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _find(items: Sequence[Mapping[str, Any]], sort_key: str) -> Mapping[str, Any] | None:
    return next((i for i in items if i.get(table.SORT_KEY) == sort_key), None)


def dead_letter_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A dead-letter record (``#dead-letter`` item) as shown and as JSON."""
    return {
        "orderId": str(record.get(table.PARTITION_KEY, "")),
        "fault": str(record.get(table.FAULT, UNKNOWN)),
        "reason": str(record.get(table.REASON, "")),
        "parkedAt": str(record.get(table.PARKED_AT, "")),
    }


def notification_view(order: Order, record: Mapping[str, Any] | None, now: datetime) -> Any:
    """The customer's "Order sent" notification of an invoiced order, else ``None``."""
    if order.outcome is None or order.outcome.kind != INVOICED:
        return None
    told = _time((record or {}).get(table.NOTIFIED_AT))
    lease = order.notify_lease
    if order.notified:
        state = "told"
    elif lease is None:
        state = "not-claimed"
    else:
        state = "claimed" if lease >= now else "lease-expired"
    return {
        "state": state,
        "notifiedAt": format_time(told) if told else None,
        "leaseUntil": format_time(lease) if lease else None,
    }


def waiting_for(
    order: Order, required: tuple[str, ...], has_record: bool, now: datetime
) -> list[dict[str, str]]:
    """What has to happen next for the order to be done, as ``{step, detail}``."""
    if order.record_corrupt:
        return [{"step": "operator", "detail": "the order record cannot be read; repair it"}]
    if order.parked == STREAM_RANGE_LOST:
        detail = "a stream range the stream no longer holds; its orders are unknown"
        return [{"step": "operator", "detail": detail}]
    if order.parked is not None:
        return [{"step": "operator", "detail": f"dead-lettered ({order.parked}); redrive it"}]
    outcome = order.outcome
    if outcome is not None:
        if outcome.kind == INVOICED and not order.notified:
            return [{"step": "notification", "detail": "the customer is not told yet"}]
        return []
    if not order.results:
        return [{"step": "check", "detail": name} for name in required]
    # An undecided order has no order record (``has_record``) since the deadline buckets;
    # whether it was aggregated shows in its deadline bucket, not here.
    del has_record
    steps: list[dict[str, str]] = []
    state = decision(order, required)
    if state == APPROVED:
        steps.append({"step": "invoice", "detail": "invoice processing"})
    elif state == REJECTED:
        steps.append({"step": "problem", "detail": "the problem handler"})
    else:
        steps += [{"step": "check", "detail": name} for name in missing_checks(order, required)]
        if order.deadline is not None and now >= order.deadline:
            steps.append({"step": "timeout", "detail": "the timeout sweep (deadline passed)"})
    return steps


def _result_entries(order: Order) -> list[dict[str, Any]]:
    entries = []
    for name, result in sorted(order.results.items()):
        late = is_late(result, order.outcome)
        stored = result.recorded_at or result.occurred_at
        entries.append(
            {
                "at": format_time(stored),
                "event": "check-result",
                "summary": f"{name} = {result.status}" + (" (late)" if late else ""),
                "check": name,
                "status": result.status,
                "occurredAt": format_time(result.occurred_at),
                "recordedAt": format_time(result.recorded_at) if result.recorded_at else None,
                "reason": result.reason,
                "late": late,
            }
        )
    return entries


def _record_entries(
    order: Order, record: Mapping[str, Any] | None, now: datetime
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    first = _time((record or {}).get(table.FIRST_SEEN_AT))
    if first is not None:
        entries.append(
            {
                "at": format_time(first),
                "event": "opened",
                "summary": "first aggregated, deadline set",
            }
        )
    if order.deadline is not None and order.outcome is None:
        due = "passed" if now >= order.deadline else "ahead"
        entries.append(
            {"at": format_time(order.deadline), "event": "deadline", "summary": f"deadline {due}"}
        )
    outcome = order.outcome
    if outcome is not None:
        text = outcome_text({"invoice": outcome.invoice, "problem": outcome.problem})
        summary = f"{outcome.kind}: {text}" if text else outcome.kind
        entries.append(
            {
                "at": format_time(outcome.at),
                "event": "outcome",
                "summary": summary,
                "kind": outcome.kind,
            }
        )
    told = _time((record or {}).get(table.NOTIFIED_AT))
    if told is not None:
        entries.append({"at": format_time(told), "event": "customer-told", "summary": "told"})
    elif order.notify_lease is not None:
        entries.append(
            {
                "at": format_time(order.notify_lease),
                "event": "notification-lease",
                "summary": "notification claimed until here",
            }
        )
    return entries


def order_story(
    order_id: str,
    items: Sequence[Mapping[str, Any]],
    required: tuple[str, ...],
    now: datetime,
    order_timeout: timedelta | None = None,
) -> dict[str, Any]:
    """The ``inspect`` view of one order (see docs/operating.md for its schema).
    ``order_timeout`` (the stage's ``ORDER_TIMEOUT_SECONDS``) gives it its deadline."""
    order = order_from_items(order_id, [dict(i) for i in items], order_timeout)
    record = _find(items, table.ORDER_RECORD)
    parked = _find(items, table.DEAD_LETTER_RECORD)
    problems = list(order.problems)
    if record is not None and not order.record_corrupt:
        for attribute in (table.FIRST_SEEN_AT, table.NOTIFIED_AT):
            value = record.get(attribute)
            if value is not None and _time(value) is None:
                problems.append(f"order record: {attribute} {str(value)[:40]!r} is not a time")
    timeline = _result_entries(order) + (
        [] if order.record_corrupt else _record_entries(order, record, now)
    )
    dead_letter = dead_letter_view(parked) if parked is not None else None
    if dead_letter is not None:
        entries_at = dead_letter["parkedAt"] or format_time(now)
        timeline.append(
            {
                "at": entries_at,
                "event": "dead-lettered",
                "summary": f"dead-lettered: {dead_letter['fault']}",
                "fault": dead_letter["fault"],
                "reason": dead_letter["reason"],
            }
        )
    timeline.sort(key=lambda entry: str(entry["at"]))
    outcome = order.outcome
    return {
        "command": "inspect",
        "orderId": order_id,
        "status": UNKNOWN if order.record_corrupt else order_status(order, required),
        "requiredChecks": list(required),
        "missing": missing_checks(order, required),
        "deadline": format_time(order.deadline) if order.deadline and not outcome else None,
        "due": bool(order.deadline and outcome is None and now >= order.deadline),
        "outcome": None
        if outcome is None
        else {
            "kind": outcome.kind,
            "at": format_time(outcome.at),
            "invoice": outcome.invoice,
            "problem": outcome.problem,
        },
        "notification": notification_view(order, record, now),
        "deadLetter": dead_letter,
        "recordCorrupt": order.record_corrupt,
        "problems": problems,
        "waitingFor": waiting_for(order, required, record is not None, now),
        "timeline": timeline,
    }


def short(text: str | None, limit: int = SHOWN_REASON_CHARS) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entry_line(entry: Mapping[str, Any]) -> str:
    event = str(entry["event"])
    line = f"  {entry['at']}  {event:<18} "
    if event == "check-result":
        line += f"{entry['check']} = {entry['status']}"
        if entry.get("reason"):
            line += f" ({short(entry['reason'])!r})"
        if entry["occurredAt"] != entry["at"]:
            line += f"  occurred {entry['occurredAt']}"
        if entry.get("late"):
            line += "  LATE"
        return line
    if event == "dead-lettered":
        return line + f"{entry['fault']}: {short(entry.get('reason'))}"
    return line + str(entry["summary"])


def waiting_line(steps: Sequence[Mapping[str, str]]) -> str:
    if not steps:
        return "nothing (done)"
    return "; ".join(f"{s['step']}: {s['detail']}" for s in steps)


def render_story(story: Mapping[str, Any]) -> list[str]:
    """Human-readable lines of an :func:`order_story` view."""
    lines = [
        f"order {story['orderId']}: {story['status']}"
        + (f"  (missing: {', '.join(story['missing'])})" if story["missing"] else "")
    ]
    lines += [_entry_line(entry) for entry in story["timeline"]]
    if story["deadline"]:
        lines.append(f"deadline:     {story['deadline']}" + ("  (passed)" if story["due"] else ""))
    outcome = story["outcome"]
    if outcome is not None:
        lines.append(f"outcome:      {outcome['kind']} at {outcome['at']}  {outcome_text(outcome)}")
    notification = story["notification"]
    if notification is not None:
        lines.append(
            f"notification: {notification['state']}"
            + (f" at {notification['notifiedAt']}" if notification["notifiedAt"] else "")
            + (f", lease until {notification['leaseUntil']}" if notification["leaseUntil"] else "")
        )
    dead = story["deadLetter"]
    if dead is not None:
        lines.append(
            f"dead letter:  {dead['fault']} at {dead['parkedAt']}: {short(dead['reason'])}"
        )
    for problem in story["problems"]:
        lines.append(f"cannot read:  {problem}")
    lines.append(f"waiting for:  {waiting_line(story['waitingFor'])}")
    return lines


def outcome_text(outcome: Mapping[str, Any]) -> str:
    """``invoice INV-… issued …`` or ``failed: In Stock (sold out); missing: …``."""
    invoice = outcome.get("invoice")
    if invoice:
        return f"invoice {invoice.get('invoiceId', '?')} issued {invoice.get('issuedAt', '?')}"
    problem = outcome.get("problem") or {}
    parts = []
    failed = [
        f"{f.get('check')}" + (f" ({short(f.get('reason'))})" if f.get("reason") else "")
        for f in problem.get("failed") or []
        if isinstance(f, Mapping)
    ]
    if failed:
        parts.append("failed: " + ", ".join(failed))
    if problem.get("missing"):
        parts.append("missing: " + ", ".join(str(m) for m in problem["missing"]))
    return "; ".join(parts)
