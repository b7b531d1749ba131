"""Event patterns, built in one place: the EventBridge rules and the stream filter.

``app.py`` registers these patterns, the deployment template carries them, the local
runtime routes with them and the tests assert them.

Example::

    invoice_pattern(settings)
    # {"source": ["event-aggregator"], "detail-type": ["Order Checks Aggregated"],
    #  "detail": {"status": ["approved"], "Account Check": ["passed"], "In Stock": ["passed"]}}
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.config import Settings
from chalicelib.domain import APPROVED, CHECK_STATUSES, FAILED, PASSED, TIMED_OUT

# Stream records that change a source event (a REMOVE never does).
SOURCE_EVENT_NAMES = ("INSERT", "MODIFY")


def _envelope(settings: Settings, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": [settings.event_source],
        "detail-type": [settings.detail_type],
        "detail": detail,
    }


def invoice_pattern(settings: Settings) -> dict[str, Any]:
    """Every required check passed and the order is not final yet."""
    detail: dict[str, Any] = {"status": [APPROVED]}
    detail.update({check: [PASSED] for check in settings.required_checks})
    return _envelope(settings, detail)


def problem_pattern(settings: Settings) -> dict[str, Any]:
    """Any required check failed, or the order timed out with checks missing."""
    branches: list[dict[str, Any]] = [{check: [FAILED]} for check in settings.required_checks]
    branches.append({"status": [TIMED_OUT]})
    return _envelope(settings, {"$or": branches})


def all_checks_present_pattern(settings: Settings) -> dict[str, Any]:
    """The reference design's rule: every required check has reported."""
    return _envelope(settings, {check: [{"exists": True}] for check in settings.required_checks})


def stream_filter_pattern() -> dict[str, Any]:
    """Lambda event filter of the aggregator's stream trigger.

    Only inserted or modified items whose new image has a check status invoke the
    aggregator; the order record (sort key ``#order``) has none, so it never does. The
    deployment template and the local runtime both apply this pattern.
    """
    return {
        "eventName": list(SOURCE_EVENT_NAMES),
        "dynamodb": {"NewImage": {table.STATUS: {"S": list(CHECK_STATUSES)}}},
    }
