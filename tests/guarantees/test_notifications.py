"""Issue 9, case 2: exactly one "Order sent" per invoiced order under concurrent and
repeated deliveries, and none lost when a delivery dies between recording the outcome
and notifying.

Rules driven: ``ParallelizationFactor`` 10 keeps order only per item, so one order's two
checks may be aggregated in concurrent batches (with-ddb); EventBridge delivers at least
once, here 8 times per matched event, shuffled and concurrent (eb-rule-retry-policy,
invocation-async-error-handling); a failed asynchronous invocation is retried twice after
1 and 2 minutes, then goes to the on-failure destination (invocation-async-error-handling).
Concurrency is the seeded lockstep scheduler's: handlers interleave at every AWS call.
"""

from __future__ import annotations

from typing import Any

from tests.awsrules.lambda_async import AsyncInvocation, AsyncInvoker
from tests.guarantees.conftest import CHECKS, Stack
from tests.guarantees.observe import failing_notifications, summary_line, tally

ORDERS = [f"order-{n:02d}" for n in range(20)]
NOTIFY_LEASE_SECONDS = 120  # CONTRACT default


def _approve_through_the_api(stack: Stack, orders: list[str]) -> None:
    for order in orders:
        for check in CHECKS:
            assert stack.post(order, check, "passed").status_code == 201


def test_every_approved_order_is_told_order_sent_exactly_once_under_concurrent_deliveries(
    stack: Stack,
) -> None:
    """ParallelizationFactor 10 (concurrent batches, per-item order) plus 8 concurrent,
    shuffled EventBridge deliveries of each approved event."""
    _approve_through_the_api(stack, ORDERS)
    stack.run_stream(seed=5, concurrent=True, ParallelizationFactor=10)
    published = len(stack.bus.events)
    stack.deliver(copies=8, seed=5, concurrent=True)

    result = tally(
        "2-concurrent-deliveries",
        ORDERS,
        stack.statuses(ORDERS),
        stack.sent.sent,
        stack.replies(),
        approved_events=published,
        most_told=max(stack.sent.sent.values(), default=0),
    )
    summary_line(result)
    assert not result.told_twice and not result.told_never, (
        f"customers told twice or never: {result.counts()}; told {dict(stack.sent.sent)}"
    )
    assert not result.lost and not result.doubled, result.counts()


def test_a_delivery_that_dies_before_notifying_still_ends_with_one_order_sent(
    stack: Stack,
) -> None:
    """8 concurrent deliveries; the first notification attempt fails after the outcome is
    recorded (the notifier raises). Lambda retries the failed invocation after 1 and 2
    minutes; later the lease has expired, EventBridge delivers a late duplicate and the
    sweep runs. The customer is told exactly once."""
    order = "dies-1"
    _approve_through_the_api(stack, [order])
    stack.run_stream(ParallelizationFactor=10)
    with failing_notifications(order, times=1) as failing:
        stack.deliver(copies=8, seed=2, concurrent=True)
    assert failing.injected == 1, "precondition: one notification attempt failed"
    _late_redelivery(stack, order)

    result = tally(
        "2-delivery-dies-before-notifying",
        [order],
        stack.statuses([order]),
        stack.sent.sent,
        stack.replies(),
    )
    summary_line(result)
    assert stack.sent.sent[order] == 1, f"'Order sent' {stack.sent.sent[order]} times: {result}"
    assert not result.lost and not result.doubled, result.counts()


def test_an_order_whose_notification_failed_every_attempt_is_told_once_after_the_lease(
    stack: Stack,
) -> None:
    """The notifier is down for the whole retry window of the only delivery (Lambda's two
    retries after 1 and 2 minutes; with a notification lease the retries may also just
    see the claim held). Once it is back and the lease has expired, a late duplicate
    arrives, the sweep runs and the operator redrives any on-failure record: one
    "Order sent", not zero and not two."""
    order = "down-1"
    _approve_through_the_api(stack, [order])
    stack.run_stream(ParallelizationFactor=1)  # one batch: one approved event
    with failing_notifications(order, times=3) as failing:
        report = stack.deliver(copies=1)
    assert failing.injected >= 1, "precondition: the notification failed"
    _late_redelivery(stack, order)
    _redrive(stack, report.on_failure)

    result = tally(
        "2-notifier-down-all-attempts",
        [order],
        stack.statuses([order]),
        stack.sent.sent,
        stack.replies(),
    )
    summary_line(result)
    assert stack.sent.sent[order] == 1, f"'Order sent' {stack.sent.sent[order]} times: {result}"


def _late_redelivery(stack: Stack, order: str) -> None:
    """The lease runs out; a late EventBridge duplicate arrives; the sweep runs."""
    stack.clock.advance(NOTIFY_LEASE_SECONDS + 60)
    approved = [e for e in stack.bus.events if e["detail"].get("OrderID") == order]
    assert approved, "precondition: the order was published"
    stack.bus.events.append(approved[-1])
    stack.sweep()
    stack.deliver()


def _redrive(stack: Stack, records: list[dict[str, Any]]) -> None:
    """Re-invoke each on-failure record's function with its request payload."""
    invoker = AsyncInvoker(wait=stack.clock.advance)
    handlers = {target.name: target.handler for target in stack.targets()}
    invocations = [
        AsyncInvocation(
            record["requestContext"]["functionArn"].split(":")[6],
            handlers[record["requestContext"]["functionArn"].split(":")[6]],
            record["requestPayload"],
        )
        for record in records
    ]
    stack.deliveries.append(invoker.run(invocations))
