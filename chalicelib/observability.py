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
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EventAggregator")

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE)

EVENTS_RECEIVED = "EventsReceived"
RECORDS_SKIPPED = "RecordsSkipped"
ORDERS_PUBLISHED = "OrdersPublished"
ORDERS_COMPLETED = "OrdersCompleted"
PUBLISH_RETRIES = "PublishRetries"
PUBLISH_FAILURES = "PublishFailures"
ORDERS_TIMED_OUT = "OrdersTimedOut"


def count(name: str, value: int = 1) -> None:
    """Add ``value`` to a count metric of this invocation."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


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
