"""Lambda asynchronous invocation (how EventBridge invokes a rule's Lambda target).

Rules played here:

* "If the function returns an error, by default Lambda attempts to run it two more times,
  with a one-minute wait between the first two attempts, and two minutes between the
  second and third attempts" (``MaximumRetryAttempts``, 0–2, default 2)
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html,
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html).
* "Even if your function doesn't return an error, it's possible for it to receive the
  same event from Lambda multiple times" (same page): callers duplicate invocations.
* An event that fails every attempt goes to the on-failure destination as an invocation
  record with ``requestContext`` (``condition: RetriesExhausted``,
  ``approximateInvokeCount``), ``requestPayload``, ``responseContext`` and
  ``responsePayload`` (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html);
  without a destination it is discarded.

Attempts that AWS would run at the same time are run by a :data:`Runner` (for example
:class:`tests.awsrules.scheduler.LockstepScheduler`); the waits between retries call
``wait(seconds)`` so a test can move its clock.

Example::

    invoker = AsyncInvoker(runner=scheduler.run, wait=clock.advance_seconds)
    report = invoker.run([AsyncInvocation("invoice_processing", handler, event)] * 8)
    report.on_failure       # records of invocations that failed all attempts
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.awsrules.scheduler import Runner, run_sequentially

RETRIES_EXHAUSTED = "RetriesExhausted"
# Waits before the second and the third attempt.
RETRY_WAITS_SECONDS = (60.0, 120.0)


@dataclass(frozen=True)
class AsyncInvocation:
    """One asynchronous invocation of a function with an event."""

    function_name: str
    handler: Callable[[dict[str, Any]], Any]
    event: dict[str, Any]


@dataclass
class AttemptResult:
    invocation: AsyncInvocation
    attempt: int
    response: Any = None
    error: BaseException | None = None


@dataclass
class AsyncReport:
    attempts: list[AttemptResult] = field(default_factory=list)
    on_failure: list[dict[str, Any]] = field(default_factory=list)

    def responses(self, function_name: str | None = None) -> list[Any]:
        """What successful attempts returned (what an on-success destination would get)."""
        return [
            a.response
            for a in self.attempts
            if a.error is None
            and (function_name is None or a.invocation.function_name == function_name)
        ]


def failure_record(
    invocation: AsyncInvocation, attempts: int, error: BaseException, account: str, region: str
) -> dict[str, Any]:
    """The on-failure destination's record for an invocation that failed every attempt."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{region}:{account}:function:"
            f"{invocation.function_name}:$LATEST",
            "condition": RETRIES_EXHAUSTED,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": invocation.event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


class AsyncInvoker:
    """Runs asynchronous invocations with Lambda's retries and on-failure destination."""

    def __init__(
        self,
        maximum_retry_attempts: int = 2,
        runner: Runner | None = None,
        wait: Callable[[float], object] | None = None,
        account: str = "123456789012",
        region: str = "us-east-1",
    ) -> None:
        if not 0 <= maximum_retry_attempts <= 2:
            raise ValueError("MaximumRetryAttempts of an asynchronous invocation is 0 to 2")
        self._retries = maximum_retry_attempts
        self._runner: Runner = runner or run_sequentially
        self._wait = wait or (lambda seconds: None)
        self._account = account
        self._region = region

    def run(self, invocations: Sequence[AsyncInvocation]) -> AsyncReport:
        """Attempt every invocation (concurrently, by the runner), retry function errors
        after Lambda's waits, and describe what still fails."""
        report = AsyncReport()
        pending = list(invocations)
        for attempt in range(1, self._retries + 2):
            if attempt > 1:
                self._wait(RETRY_WAITS_SECONDS[attempt - 2])
            outcomes = self._runner([_call(i) for i in pending])
            failed: list[AsyncInvocation] = []
            for invocation, outcome in zip(pending, outcomes, strict=True):
                report.attempts.append(
                    AttemptResult(invocation, attempt, outcome.value, outcome.error)
                )
                if outcome.error is not None:
                    failed.append(invocation)
                    if attempt == self._retries + 1:
                        report.on_failure.append(
                            failure_record(
                                invocation, attempt, outcome.error, self._account, self._region
                            )
                        )
            pending = failed
            if not pending:
                break
        return report


def _call(invocation: AsyncInvocation) -> Callable[[], Any]:
    return lambda: invocation.handler(invocation.event)
