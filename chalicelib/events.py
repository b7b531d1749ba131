"""The aggregated event: what the aggregator and the timeout sweep publish.

``detail`` carries one top-level *leaf* per check that has reported (its status), so
EventBridge's ``exists`` and value filters can match it, plus ``status`` (decided by the
completion policy), the lists of ``failed`` and ``missing`` checks, the ``reasons``
given and, per policy group, the counts of ``passed``, ``failed`` and ``remaining``
checks (``groups``). A reason longer than
:data:`MAX_EVENT_REASON_CHARS` (a direct writer may store up to DynamoDB's 400 KB) is cut
to that length and its check is listed in ``truncated``; the full text stays in the table
and in ``GET /orders/{id}``.

Example::

    aggregated_detail(order, required)
    # {"OrderID": "7", "status": "approved", "Account Check": "passed", "In Stock": "passed",
    #  "failed": [], "missing": [], "reasons": {}, "truncated": [],
    #  "groups": {"required": {"passed": 2, "failed": 0, "remaining": 0}}}
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.config import RESERVED_DETAIL_KEYS, Settings
from chalicelib.domain import MAX_REASON_CHARS, Order
from chalicelib.policy import CompletionPolicy, Evaluation

# The same bound the API puts on a reason: what a source may send is what an event carries.
MAX_EVENT_REASON_CHARS = MAX_REASON_CHARS


def aggregated_detail(
    order: Order,
    policy: CompletionPolicy | tuple[str, ...],
    status: str | None = None,
    evaluation: Evaluation | None = None,
) -> dict[str, Any]:
    """The ``detail`` of the aggregated event for ``order`` under ``policy`` (a tuple of
    required checks stands for the default policy of those checks)."""
    if isinstance(policy, tuple):
        policy = CompletionPolicy.default(policy)
    evaluation = evaluation or policy.evaluate(order)
    detail: dict[str, Any] = {
        "OrderID": order.order_id,
        "status": status or evaluation.status,
    }
    for name, result in sorted(order.results.items()):
        if name not in RESERVED_DETAIL_KEYS:
            detail[name] = result.status
    detail["failed"] = evaluation.failed
    detail["missing"] = evaluation.missing
    reasons = {name: r.reason for name, r in sorted(order.results.items()) if r.reason}
    detail["reasons"] = {name: text[:MAX_EVENT_REASON_CHARS] for name, text in reasons.items()}
    detail["truncated"] = [
        name for name, text in reasons.items() if len(text) > MAX_EVENT_REASON_CHARS
    ]
    detail["groups"] = evaluation.counts()
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
