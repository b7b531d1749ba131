"""Issue 9, case 1: one order's fault never holds up another order, and no order that a
source wrote directly ends ``pending`` forever, under Lambda's documented stream rules.

Rules driven (see :mod:`tests.awsrules.lambda_streams`): the partial batch response
checkpoints at the lowest reported sequence number and retries everything from there
(services-ddb-batchfailurereporting); after ``MaximumRetryAttempts`` Lambda discards the
whole retried batch and sends the on-failure record to the destination
(services-dynamodb-errors); ``ParallelizationFactor`` keeps order only per item
(with-ddb). The on-failure records reach ``stream_recovery`` through its SQS trigger.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import table
from tests.guarantees.conftest import CHECKS, Stack
from tests.guarantees.observe import summary_line, tally
from tests.helpers import TABLE

CORRUPT = "corrupt-1"
HEALTHY = [f"healthy-{n:02d}" for n in range(20)]
# Keys GET shows for a readable order; a corrupt one must add a flag besides these.
VIEW_KEYS = {
    "orderId",
    "status",
    "events",
    "missing",
    "decidedAt",
    "invoice",
    "problem",
    "deadline",
}


def _write_corrupt_order(stack: Stack) -> None:
    """Another writer leaves the app's own ``#order`` item unreadable; both checks passed."""
    stack.aws.dynamodb.put_item(
        TableName=TABLE,
        Item={
            table.PARTITION_KEY: {"S": CORRUPT},
            table.SORT_KEY: {"S": table.ORDER_RECORD},
            table.DEADLINE: {"S": "not-a-time"},
        },
    )
    for check in CHECKS:
        stack.direct_write(CORRUPT, check, "passed")


def _write_approved(stack: Stack, orders: list[str]) -> None:
    for order in orders:
        for check in CHECKS:
            stack.direct_write(order, check, "passed")


def _settle(stack: Stack) -> None:
    """Targets get what was published; discarded ranges go through stream_recovery."""
    stack.deliver()
    if stack.failure_messages():
        stack.recover_if_present()
        stack.deliver()


@pytest.mark.parametrize("parallelization", [1, 10])
def test_a_corrupt_order_item_never_blocks_the_healthy_orders_of_its_shard(
    stack: Stack, parallelization: int
) -> None:
    """Lowest-sequence-number checkpoint, retry and discard of the retried batch after
    MaximumRetryAttempts (10, as deployed), with ParallelizationFactor 1 (AWS's default)
    and 10 (deployed). The 20 healthy orders were written directly (no API)."""
    _write_corrupt_order(stack)
    _write_approved(stack, HEALTHY)
    report = stack.run_stream(seed=parallelization, ParallelizationFactor=parallelization)
    _settle(stack)

    result = tally(
        f"1-corrupt-order-pf{parallelization}",
        HEALTHY,
        stack.statuses(HEALTHY),
        stack.sent.sent,
        stack.replies(),
        discarded_records=report.discarded_records,
        stream_recovery=stack.has_recovery,
    )
    summary_line(result)
    assert not result.lost, (
        f"healthy orders behind a corrupt one were never decided: {result.counts()}; "
        f"lost {result.lost[:5]}…"
    )
    assert not result.told_never and not result.told_twice, result.counts()


def test_a_corrupt_order_is_dead_lettered_with_its_fault_and_stalls_nothing(stack: Stack) -> None:
    """A permanent fault is parked by the app (CONTRACT: ``#dead-letter`` record, Fault
    ``corrupt-item``), so Lambda never has to discard the batch (services-dynamodb-errors)."""
    _write_corrupt_order(stack)
    _write_approved(stack, HEALTHY[:3])
    report = stack.run_stream(ParallelizationFactor=1)
    parked = stack.dead_letters()
    assert report.discarded_records == 0, (
        f"Lambda discarded {report.discarded_records} records after "
        f"{len(report.invocations)} invocations: the corrupt order stalled its shard"
    )
    assert parked.get(CORRUPT, {}).get("Fault") == "corrupt-item", parked


def test_get_of_an_order_with_a_corrupt_item_answers_json_with_a_flag(stack: Stack) -> None:
    """Bad data is never a 500 (project rule): GET shows the readable parts plus a flag."""
    _write_corrupt_order(stack)
    response = stack.get(CORRUPT)
    assert response.status_code == 200, (response.status_code, response.body[:200])
    assert response.headers.get("Content-Type", "").startswith("application/json")
    body: dict[str, Any] = response.json_body
    assert body["orderId"] == CORRUPT
    assert set(body.get("events", {})) == set(CHECKS), body
    flags = {key: value for key, value in body.items() if key not in VIEW_KEYS and value}
    assert flags, f"no flag tells the reader that part of the order is unreadable: {body}"


def test_direct_written_orders_whose_stream_records_were_discarded_are_still_decided(
    stack: Stack,
) -> None:
    """A transient fault (throttled Query) outlasts MaximumRetryAttempts, so Lambda
    discards the batch and sends DDBStreamBatchInfo to the failure queue
    (services-dynamodb-errors). The orders were written directly, so nothing else opened
    them: the on-failure message must bring them back (stream_recovery), or at the latest
    the sweep after their timeout."""
    orders = [f"direct-{n}" for n in range(5)]
    _write_approved(stack, orders)
    stack.throttled.update(orders)
    report = stack.run_stream(ParallelizationFactor=1)
    stack.throttled.clear()
    assert report.discarded_records > 0, "precondition: the throttled batch was discarded"
    assert stack.failure_messages() >= 1
    _settle(stack)
    stack.clock.advance(3600)  # well past ORDER_TIMEOUT_SECONDS: the sweep's chance
    stack.sweep()
    stack.deliver()

    result = tally(
        "1-direct-writes-discarded",
        orders,
        stack.statuses(orders),
        stack.sent.sent,
        stack.replies(),
        discarded_records=report.discarded_records,
        stream_recovery=stack.has_recovery,
    )
    summary_line(result)
    assert not result.lost, f"orders left pending forever: {result.counts()}"
    assert all(status == "invoiced" for status in stack.statuses(orders).values())
