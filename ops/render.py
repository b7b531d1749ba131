"""Views and human-readable lines of the commands' results: pure, no AWS.

Every ``--json`` document is built here or in :mod:`ops.story`; docs/operating.md and
:mod:`ops.schema` describe them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib import table
from chalicelib.domain import format_time
from ops.queues import Queue, Resolution
from ops.story import _time, render_story, short, waiting_line


def story_lines(story: Mapping[str, Any]) -> list[str]:
    return render_story(story)


def pending_entry(story: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One line of ``pending``: an :func:`ops.story.order_story` cut to what matters."""
    record = next((i for i in items if i.get(table.SORT_KEY) == table.ORDER_RECORD), {})
    first = _time(record.get(table.FIRST_SEEN_AT))  # an order opened before the buckets
    if first is None:
        # Since the deadline buckets: when its first result arrived (its clock's start).
        stored = [e["at"] for e in story["timeline"] if e["event"] == "check-result"]
        first = _time(min(stored)) if stored else None
    return {
        "orderId": story["orderId"],
        "status": story["status"],
        "deadline": story["deadline"],
        "due": story["due"],
        "firstSeenAt": format_time(first) if first else None,
        "missing": story["missing"],
        "waitingFor": story["waitingFor"],
        "problems": story["problems"],
    }


def pending_lines(data: Mapping[str, Any]) -> list[str]:
    orders = data["orders"]
    scope = "due " if data["due"] else ""
    if data["olderThanSeconds"] is not None:
        scope += f"older than {data['olderThanSeconds']} s "
    lines = [f"{len(orders)} {scope}undecided order(s) in {', '.join(data['shards'])}"]
    if not orders:
        return lines
    width = max(len(o["orderId"]) for o in orders)
    lines.append(f"  {'ORDER':<{width}}  {'STATUS':<9}  {'DEADLINE':<27}  WAITING FOR")
    for order in orders:
        deadline = (order["deadline"] or "-") + (" !" if order["due"] else "")
        lines.append(
            f"  {order['orderId']:<{width}}  {order['status']:<9}  {deadline:<27}  "
            f"{waiting_line(order['waitingFor'])}"
        )
    if data["truncated"]:
        lines.append("  … more; raise --limit")
    return lines


def _number(attributes: Mapping[str, str], key: str) -> int | None:
    value = attributes.get(key)
    return int(value) if value is not None and value.isdigit() else None


def _sent_at(message: Mapping[str, Any]) -> str | None:
    stamp = (message.get("Attributes") or {}).get("SentTimestamp")
    if not stamp or not str(stamp).isdigit():
        return None
    return format_time(datetime.fromtimestamp(int(stamp) / 1000, UTC))


def message_view(message: Mapping[str, Any], resolution: Resolution) -> dict[str, Any]:
    span = resolution.span
    return {
        "messageId": str(message.get("MessageId", "")),
        "sentAt": _sent_at(message),
        "receiveCount": _number(message.get("Attributes") or {}, "ApproximateReceiveCount"),
        "kind": resolution.kind,
        "orderIds": resolution.order_ids,
        "resolved": resolution.resolved,
        "note": resolution.note,
        "range": None
        if span is None
        else {
            "streamArn": span.stream_arn,
            "shardId": span.shard_id,
            "start": span.start,
            "end": span.end,
        },
    }


def queue_view(
    queue: Queue, messages: Sequence[tuple[Mapping[str, Any], Resolution]]
) -> dict[str, Any]:
    return {
        "source": queue.source,
        "name": queue.name,
        "exists": queue.url is not None,
        "note": queue.note,
        "approximateMessages": _number(queue.attributes, "ApproximateNumberOfMessages"),
        "inFlight": _number(queue.attributes, "ApproximateNumberOfMessagesNotVisible"),
        "messages": [message_view(m, r) for m, r in messages],
    }


def dead_letter_lines(data: Mapping[str, Any]) -> list[str]:
    records = data["records"]
    lines = [
        f"dead-letter records (table index partition {table.DEAD_LETTER_SHARD}): {len(records)}"
    ]
    for record in records:
        lines.append(
            f"  {record['parkedAt']}  {record['orderId']}  {record['fault']}: {short(record['reason'])}"
        )
    for queue in data["queues"]:
        if not queue["exists"]:
            lines.append(f"queue {queue['name']} ({queue['source']}): {queue['note']}")
            continue
        depth = queue["approximateMessages"]
        flight = queue["inFlight"]
        lines.append(
            f"queue {queue['name']} ({queue['source']}): ~{depth} message(s)"
            + (f", {flight} in flight (not shown)" if flight else "")
        )
        for message in queue["messages"]:
            orders = ", ".join(message["orderIds"]) or "-"
            line = f"  {message['sentAt'] or '-'}  {message['messageId']}  {message['kind']}: orders {orders}"
            if message["note"]:
                line += f"  ({message['note']})"
            lines.append(line)
    lines.append(f"orders concerned: {', '.join(data['orderIds']) or 'none'}")
    return lines


def redrive_lines(data: Mapping[str, Any]) -> list[str]:
    prefix = "dry run: " if data["dryRun"] else ""
    lines = []
    for skipped in data["skipped"]:
        lines.append(f"{prefix}skipped {skipped['source']} {skipped['id']}: {skipped['note']}")
    for note in data.get("queueNotes", []):
        lines.append(f"{prefix}{note}")
    if not data["orders"]:
        lines.append(
            f"{prefix}nothing to do: nothing parked"
            + (" names those orders" if data.get("named") else "")
        )
        return lines
    for result in data["orders"]:
        status = f" [{result['status']}]" if result["status"] else ""
        lines.append(
            f"{prefix}order {result['orderId']}: {result['action']}{status}: {result['detail']}"
        )
    for entry in data["entries"]:
        lines.append(f"{prefix}{entry['source']} {entry['id']}: {entry['result']}")
    return lines


def replay_lines(data: Mapping[str, Any]) -> list[str]:
    prefix = "dry run: " if data["dryRun"] else ""
    lines = []
    for result in data["orders"]:
        status = f" [{result['status']}]" if result["status"] else ""
        lines.append(
            f"{prefix}order {result['orderId']}: {result['action']}{status}: {result['detail']}"
        )
        if data["dryRun"] and result["event"] is not None:
            lines.append(f"  detail: {result['event']}")
    return lines
