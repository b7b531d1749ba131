"""A throttled EventBridge target, by eb-rule-retry-policy and eb-rule-dlq.

EventBridge retries a target's retriable errors (a throttle: Lambda's 429
``TooManyRequestsException`` when the function has no concurrency left) until the target's
``RetryPolicy`` runs out, "either the maximum number of attempts ... or ... the duration of
the MaximumEventAgeInSeconds" (API_RetryPolicy), then sends the event to the target's
dead-letter queue with the attributes RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE,
EXHAUSTED_RETRY_CONDITION and RETRY_ATTEMPTS, or drops it.
"""

from __future__ import annotations

from typing import Any

from local.asyncinvoke import AsyncInvocations
from local.lambdas import Clock, Functions
from local.template import FunctionSettings, TargetSettings

EVENT = {"id": "e-1", "detail-type": "t", "source": "tests", "detail": {}}


class ManualClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def _invocations(
    target: TargetSettings, reserved: int | None = 0
) -> tuple[AsyncInvocations, ManualClock, list[tuple[str, Any, Any]], list[Any]]:
    clock = ManualClock()
    ran: list[Any] = []
    settings = {
        "fn": FunctionSettings("fn", target=target, reserved_concurrency=reserved),
    }
    functions = Functions(
        {"fn": lambda e, c: ran.append(e)}, settings, clock, "111", "eu-west-1", "app-dev"
    )
    sent: list[tuple[str, Any, Any]] = []
    invocations = AsyncInvocations(
        functions,
        lambda queue, body, attributes=None: sent.append((queue, body, attributes)),
        seed=1,
    )
    return invocations, clock, sent, ran


def _drain(invocations: AsyncInvocations, clock: ManualClock, step: float = 400.0) -> None:
    for _ in range(1000):
        if invocations.idle:
            return
        invocations.run_due()
        clock.now += step
    raise AssertionError("never settled")


def test_a_throttled_event_is_retried_maximum_retry_attempts_times_then_dead_lettered() -> None:
    target = TargetSettings(maximum_retry_attempts=3, dead_letter_queue="dlq")
    invocations, clock, sent, ran = _invocations(target)
    invocations.submit("fn", EVENT)
    _drain(invocations, clock)
    assert ran == []
    assert invocations.throttled == 4  # the first try and three retries
    [(queue, body, attributes)] = sent
    assert (queue, body) == ("dlq", EVENT)
    assert attributes == {
        "RULE_ARN": "arn:aws:events:eu-west-1:111:rule/app-dev-fn",
        "TARGET_ARN": "arn:aws:lambda:eu-west-1:111:function:app-dev-fn",
        "ERROR_CODE": "THROTTLING",
        "ERROR_MESSAGE": attributes["ERROR_MESSAGE"],
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "RETRY_ATTEMPTS": "3",
    }
    assert "TooManyRequestsException" in attributes["ERROR_MESSAGE"]


def test_retries_stop_when_the_event_is_older_than_maximum_event_age() -> None:
    target = TargetSettings(maximum_retry_attempts=185, maximum_event_age_seconds=60)
    invocations, clock, sent, ran = _invocations(target)
    invocations.submit("fn", EVENT)
    _drain(invocations, clock, step=25.0)
    assert sent == [] and ran == []  # no DeadLetterConfig: dropped
    [dropped] = invocations.dropped
    assert (dropped.reason, dropped.destination, dropped.throttled) == (
        "MaximumEventAgeInSeconds",
        None,
        True,
    )
    assert any("1 dropped" in line for line in invocations.summary())


def test_a_target_with_concurrency_left_is_not_throttled() -> None:
    invocations, clock, sent, ran = _invocations(TargetSettings(dead_letter_queue="dlq"), None)
    invocations.submit("fn", EVENT)
    _drain(invocations, clock)
    assert ran == [EVENT] and sent == [] and invocations.throttled == 0
