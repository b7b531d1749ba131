"""This app's wording for the runtime's hops: every line says which order it is about.

Example::

    describe_hop(Hop("invoice_processing", "eventbridge", 1, "matched", event))
    # "[order 7] rule matched → invoice_processing"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.plugins import Hop


def _order_of_event(event: Mapping[str, Any]) -> tuple[str, str]:
    """(order id, status) of an aggregated event on the bus; "-" where it has none."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return "-", "-"
    return str(detail.get("OrderID", "-")), str(detail.get("status", "-"))


def _source_event(record: Mapping[str, Any]) -> str:
    """``[order 7] source event INSERT In Stock = passed``: one stream record."""
    data = record.get("dynamodb") or {}
    keys = [str(next(iter(v.values()), "?")) for v in (data.get("Keys") or {}).values()]
    status = ((data.get("NewImage") or {}).get("Status") or {}).get("S")
    line = f"[order {keys[0] if keys else '-'}] source event {record.get('eventName')}"
    line += "".join(f" {key}" for key in keys[1:])
    return line + (f" = {status}" if status else "")


def describe_hop(hop: Hop) -> str | None:
    """The console line for one hop, or None for the runtime's generic line."""
    if hop.source == "dynamodb" and hop.records == 1:
        line = _source_event(hop.event)
        return line if hop.result == "received" else f"{line}: {hop.result}"
    if hop.source == "schedule":
        return f"schedule → {hop.function}: {hop.detail}"
    if hop.source != "eventbridge":
        return None
    order, status = _order_of_event(hop.event)
    if hop.result == "received":
        return f"[order {order}] aggregated event: status={status}"
    if hop.result in ("matched", "delivered again"):
        verb = "rule matched" if hop.result == "matched" else "delivered again"
        return f"[order {order}] {verb} → {hop.function}"
    if hop.result == "ok":
        return f"[order {order}] handler done" + (f": {hop.detail}" if hop.detail else "")
    if hop.result == "failed":
        return f"[order {order}] handler failed: {hop.detail}"
    return None
