"""Event patterns, built in one place: the EventBridge rules and the stream filter.

``app.py`` registers these patterns, the deployment template carries them, the local
runtime routes with them and the tests assert them.

Example::

    invoice_pattern(settings)
    # {"source": ["event-aggregator"], "detail-type": ["Order Checks Aggregated"],
    #  "detail": {"status": ["approved"]}}

The aggregator decides each order by the completion policy (``chalicelib.policy``) and
says so in ``status``; the rules route on that, whatever groups the policy has.
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.config import Settings
from chalicelib.domain import APPROVED, CHECK_STATUSES, DECLARED, REJECTED, TIMED_OUT

# Stream records that change a source event (a REMOVE never does).
SOURCE_EVENT_NAMES = ("INSERT", "MODIFY")


def _envelope(settings: Settings, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": [settings.event_source],
        "detail-type": [settings.detail_type],
        "detail": detail,
    }


def invoice_pattern(settings: Settings) -> dict[str, Any]:
    """The policy approved the order."""
    return _envelope(settings, {"status": [APPROVED]})


def problem_pattern(settings: Settings) -> dict[str, Any]:
    """The policy rejected the order, or it timed out with checks missing."""
    return _envelope(settings, {"status": [REJECTED, TIMED_OUT]})


def all_checks_present_pattern(settings: Settings) -> dict[str, Any]:
    """The reference design's rule: every required check has reported (it matches what
    the default policy waits for; the app's own rules are the two above)."""
    return _envelope(settings, {check: [{"exists": True}] for check in settings.required_checks})


def stream_filter_pattern() -> dict[str, Any]:
    """Lambda event filter of the aggregator's stream trigger.

    Only inserted or modified items whose new image has a check status, or the status
    ``declared`` of an order's declaration, invoke the aggregator; the order record (sort
    key ``#order``) has none, so it never does. It stays one pattern with one field: the
    declaration carries a ``Status`` too, and a list of values is the filter syntax's
    "Or" (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
    #filtering-syntax). The deployment template and the local runtime both apply it.
    """
    return {
        "eventName": list(SOURCE_EVENT_NAMES),
        "dynamodb": {"NewImage": {table.STATUS: {"S": [*CHECK_STATUSES, DECLARED]}}},
    }
