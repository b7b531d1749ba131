"""Structured JSON logs and CloudWatch metrics (embedded metric format), via Powertools.

Every log line about an order carries ``order_id``::

    logger.info("order published", extra={"order_id": "7", "status": "approved"})
    count(EVENTS_RECEIVED, 3)

Metrics are flushed once per invocation by :func:`flushing_metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "event-aggregator"
DEFAULT_NAMESPACE = "EventAggregator"
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE)

EVENTS_RECEIVED = "EventsReceived"
RECORDS_SKIPPED = "RecordsSkipped"
ORDERS_PUBLISHED = "OrdersPublished"
ORDERS_COMPLETED = "OrdersCompleted"
PUBLISH_RETRIES = "PublishRetries"
PUBLISH_FAILURES = "PublishFailures"
ORDERS_TIMED_OUT = "OrdersTimedOut"
ORDERS_DEAD_LETTERED = "OrdersDeadLettered"
ORDERS_RECOVERED = "OrdersRecovered"
NOTIFICATIONS_SENT = "NotificationsSent"
PUBLISHED_BYTES = "PublishedBytes"
# Time from an order's last check result to its recorded outcome (milliseconds).
DECISION_LATENCY = "DecisionLatency"
# Every metric the code emits, for the dashboard and the tests that compare them.
METRIC_NAMES = (
    EVENTS_RECEIVED,
    RECORDS_SKIPPED,
    ORDERS_PUBLISHED,
    ORDERS_COMPLETED,
    PUBLISH_RETRIES,
    PUBLISH_FAILURES,
    ORDERS_TIMED_OUT,
    ORDERS_DEAD_LETTERED,
    ORDERS_RECOVERED,
    NOTIFICATIONS_SENT,
    PUBLISHED_BYTES,
    DECISION_LATENCY,
)


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to a count metric of this invocation."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_bytes(name: str, value: int) -> None:
    """Add ``value`` bytes to a size metric of this invocation."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Bytes, value=value)


def record_milliseconds(name: str, value: float) -> None:
    """One duration sample (CloudWatch computes percentiles over the samples)."""
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=max(value, 0.0))


@contextmanager
def flushing_metrics() -> Iterator[None]:
    """Write this invocation's metrics as one EMF log line when the block ends."""
    try:
        yield
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
            # With POWERTOOLS_METRICS_DISABLED set, flushing keeps the metrics: drop them.
            metrics.clear_metrics()
