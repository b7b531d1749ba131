"""Issue 9, case 4: one sweep run times out every due order it can within its budget.

Rules driven: an EventBridge schedule invokes ``timeout_sweep`` once a minute; a Query
returns at most ``Limit`` items (or 1 MB) per page and says where to go on with
``LastEvaluatedKey`` (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html);
the sweep's PutEvents calls obey the 10-entry / 256 KB limits (eb-putevent-size).

The 1,000 orders are listed as the aggregator lists them: one deadline bucket per stream
batch of 100 orders (``EventStore.put_bucket``, on a shard chosen by the batch id), each
order at its deadline (its check's arrival plus ``ORDER_TIMEOUT_SECONDS``); the checks
are written with ``BatchWriteItem`` to keep the test fast. The sweep reads the buckets
with a Query per page (``Limit`` buckets), so the run pages through every shard. What the sweep publishes is counted for all
1,000; a seeded sample of 50 is then delivered to the problem handler and read with GET,
to show the chain ends in ``timed-out`` (every delivery would cost a minute on moto).

``SWEEP_BUDGET_SECONDS`` is raised for this test: the budget is wall time, and moto on a
shared 2-core machine answers far slower than DynamoDB, so the default budget would make
the outcome depend on the machine's load (a timed assertion). Whether the budget is
enough at AWS latencies is the capacity plan's claim (``bench``); this test checks that
one run pages through every shard instead of stopping at a fixed number of orders.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import services
from chalicelib.config import get_settings
from chalicelib.store import pending_shard
from tests.guarantees.conftest import CHECKS, Stack
from tests.guarantees.observe import summary_line, tally
from tests.helpers import TABLE

DUE = 1000
SAMPLE = 50


@pytest.fixture
def app_env() -> dict[str, str]:
    return {"SWEEP_BUDGET_SECONDS": "600"}


def test_one_sweep_run_times_out_a_thousand_due_orders(stack: Stack) -> None:
    """1,000 pending orders (one check missing), all past their deadline; one run."""
    orders = [f"due-{n:04d}" for n in range(DUE)]
    _open_orders(stack, orders)
    stack.clock.advance(get_settings().order_timeout_seconds + 60)
    stack.sweep()
    published = {
        str(e["detail"].get("OrderID"))
        for e in stack.bus.events
        if e["detail"].get("status") == "timed-out"
    }
    statuses = {order: "timed-out" if order in published else "pending" for order in orders}
    result = tally("4-sweep", orders, statuses, stack.sent.sent, published_timed_out=len(published))
    summary_line(result)
    assert not result.lost, f"due orders the sweep left for later runs: {result.counts()}"

    sample = set(random.Random(4).sample(orders, SAMPLE))
    stack.bus.events[:] = [e for e in stack.bus.events if e["detail"].get("OrderID") in sample]
    stack.deliver()
    seen = stack.statuses(sorted(sample))
    assert all(status == "timed-out" for status in seen.values()), seen


def _open_orders(stack: Stack, orders: list[str]) -> None:
    """One check stored; each batch of 100 listed in its deadline bucket (as the
    aggregator lists them)."""
    settings = get_settings()
    deadline = stack.clock.now + timedelta(seconds=settings.order_timeout_seconds)
    requests: list[dict[str, Any]] = [
        {"PutRequest": {"Item": stack.result_item(order, CHECKS[0], "passed")}} for order in orders
    ]
    for start in range(0, len(requests), 25):
        stack.aws.dynamodb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})
    for start in range(0, len(orders), 100):
        batch = uuid.uuid4().hex
        listed = dict.fromkeys(orders[start : start + 100], deadline)
        services.store().put_bucket(pending_shard(batch, settings.pending_shards), listed, batch)
