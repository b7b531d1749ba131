"""The aggregated event: what the aggregator and the timeout sweep publish.

``detail`` carries one top-level *leaf* per check that has reported (its status), so
EventBridge's ``exists`` and value filters can match it, plus ``status``, the lists of
``failed`` and ``missing`` checks and the ``reasons`` given. A reason longer than
:data:`MAX_EVENT_REASON_CHARS` (a direct writer may store up to DynamoDB's 400 KB) is cut
to that length and its check is listed in ``truncated``; the full text stays in the table
and in ``GET /orders/{id}``.

Example::

    aggregated_detail(order, required)
    # {"OrderID": "7", "status": "approved", "Account Check": "passed", "In Stock": "passed",
    #  "failed": [], "missing": [], "reasons": {}, "truncated": []}
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.config import RESERVED_DETAIL_KEYS, Settings
from chalicelib.domain import MAX_REASON_CHARS, Order, decision, failed_checks, missing_checks

# The same bound the API puts on a reason: what a source may send is what an event carries.
MAX_EVENT_REASON_CHARS = MAX_REASON_CHARS


def aggregated_detail(
    order: Order, required: tuple[str, ...], status: str | None = None
) -> dict[str, Any]:
    """The ``detail`` of the aggregated event for ``order``."""
    detail: dict[str, Any] = {
        "OrderID": order.order_id,
        "status": status or decision(order, required),
    }
    for name, result in sorted(order.results.items()):
        if name not in RESERVED_DETAIL_KEYS:
            detail[name] = result.status
    detail["failed"] = failed_checks(order, required)
    detail["missing"] = missing_checks(order, required)
    reasons = {name: r.reason for name, r in sorted(order.results.items()) if r.reason}
    detail["reasons"] = {name: text[:MAX_EVENT_REASON_CHARS] for name, text in reasons.items()}
    detail["truncated"] = [
        name for name, text in reasons.items() if len(text) > MAX_EVENT_REASON_CHARS
    ]
    return detail


def put_events_entry(settings: Settings, detail: dict[str, Any]) -> dict[str, Any]:
    """One ``PutEvents`` entry."""
    return {
        "Source": settings.event_source,
        "DetailType": settings.detail_type,
        "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        "EventBusName": settings.event_bus_name,
        "Resources": [],
    }
