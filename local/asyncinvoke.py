"""Asynchronous invocation, as Lambda runs it for EventBridge targets and schedules.

From invocation-async-error-handling and invocation-async-retain-records:

* on a function error (an exception or a timeout) Lambda retries ``MaximumRetryAttempts``
  times (default 2), waiting one minute before the first retry and two before the second
  (here: ``60 × n`` seconds before retry ``n``, on the runtime's clock);
* an event older than ``MaximumEventAgeInSeconds`` (default 6 hours) is not tried again;
* then the event goes to the function's on-failure destination as an invocation record
  (``requestContext`` with ``condition`` ``RetriesExhausted`` or ``EventAgeExceeded``,
  ``requestPayload``, ``responseContext``, ``responsePayload``), or, without one, to its
  dead-letter queue as the event itself; without either it is dropped, and the runtime
  says so and counts it.

Before any of that, EventBridge has to get the event into Lambda. When the function has
no concurrency left (its ``ReservedConcurrentExecutions``, from Chalice's
``reserved_concurrency`` or the merge template; 0 throttles everything), Lambda answers
the Invoke call with a throttle (429, ``TooManyRequestsException``). The rule target's
retry policy takes over (eb-rule-retry-policy: EventBridge retries retriable errors, by
default for 24 hours and up to 185 times, "with an exponential back off and jitter"; the
target's ``RetryPolicy`` sets ``MaximumRetryAttempts`` and ``MaximumEventAgeInSeconds``,
API_RetryPolicy: "until either the maximum number of attempts is made or until the
duration of the MaximumEventAgeInSeconds is met"). When they run out, the event goes to
the target's ``DeadLetterConfig`` queue (eb-rule-dlq), the event itself as the body with
the message attributes ``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE`` (``THROTTLING``),
``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION`` (``MaximumRetryAttempts`` or
``MaximumEventAgeInSeconds``) and ``RETRY_ATTEMPTS``; without one it is dropped ("the
event is dropped and EventBridge doesn't continue to process it"), and the runtime says
so and counts it. AWS does not publish the back-off's base or cap: here the wait before
retry ``n`` is drawn uniformly from ``[0, min(300, 2**n))`` seconds ("full jitter").
A busy local worker pool is not a throttle: Lambda would scale out (up to the account's
concurrency), so the invocation waits for a worker instead.

Example::

    invocations = AsyncInvocations(functions, queues.send, hop=print)
    invocations.submit("invoice_processing", event)
    while invocations.run_due():      # in the runtime's pump loop
        pass
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.activity import ActivityLog, async_source
from local.lambdas import Functions, Outcome

Hop = Callable[[str], None]
# Sends a JSON body to a local queue by name, with optional String message attributes.
Send = Callable[..., None]
RETRY_WAIT_SECONDS = 60
# The rule target's back-off (see the module docstring): full jitter, doubling, capped.
TARGET_BACKOFF_CAP_SECONDS = 300
THROTTLED = "TooManyRequestsException"


@dataclass(order=True)
class _Task:
    due: float
    order: int
    function: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    submitted: float = field(compare=False)
    attempts: int = field(default=0, compare=False)
    accepted: bool = field(default=False, compare=False)  # Lambda took the Invoke call
    throttles: int = field(default=0, compare=False)  # the target's retries so far


@dataclass
class Dropped:
    """An event given up on: ``reason`` is Lambda's condition or the target's exhausted
    retry condition; ``destination`` the queue it went to (None: dropped)."""

    function: str
    event: dict[str, Any]
    reason: str
    destination: str | None = None
    throttled: bool = False


class AsyncInvocations:
    """Queued asynchronous invocations with Lambda's retries and destinations."""

    def __init__(
        self,
        functions: Functions,
        send: Send,
        hop: Hop | None = None,
        executor: Executor | None = None,
        on_done: Callable[[str, dict[str, Any], Outcome], None] | None = None,
        on_drop: Callable[[Dropped], None] | None = None,
        activity: ActivityLog | None = None,
        seed: int | None = None,
    ) -> None:
        self._functions = functions
        self._activity = activity
        self._clock = functions.clock
        self._send = send
        self._hop = hop or (lambda line: None)
        self._executor = executor
        self._on_done = on_done
        self._on_drop = on_drop
        self._queue: list[_Task] = []
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._running = 0
        self._in_flight: dict[str, int] = {}
        self._random = random.Random(seed)
        self.dropped: list[Dropped] = []
        self.throttled = 0  # Invoke calls answered with a throttle

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._queue and not self._running

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def snapshot(self) -> list[dict[str, Any]]:
        """Per function: events queued, waiting for a retry, running now (web UI)."""
        with self._lock:
            queued = list(self._queue)
        functions: dict[str, dict[str, Any]] = {}
        for task in queued:
            entry = functions.setdefault(task.function, {"function": task.function})
            key = "retrying" if task.attempts else "queued"
            entry[key] = entry.get(key, 0) + 1
        return sorted(functions.values(), key=lambda e: str(e["function"]))

    def summary(self) -> list[str]:
        """What was throttled, dead-lettered and dropped (the runtime prints it at stop)."""
        with self._lock:
            dropped = list(self.dropped)
            throttled = self.throttled
        lines = []
        if throttled:
            lines.append(f"EventBridge targets throttled: {throttled} Invoke call(s)")
        by_target = [d for d in dropped if d.throttled]
        by_lambda = [d for d in dropped if not d.throttled]
        for kind, given_up in (("rule targets", by_target), ("async invocations", by_lambda)):
            if given_up:
                queued = sum(1 for d in given_up if d.destination)
                lines.append(
                    f"{kind} gave up on {len(given_up)} event(s): {queued} to a dead-letter "
                    f"queue or destination, {len(given_up) - queued} dropped"
                )
        return lines

    def submit(self, function: str, event: dict[str, Any]) -> None:
        now = self._clock.monotonic()
        with self._lock:
            heapq.heappush(self._queue, _Task(now, next(self._ids), function, event, now))

    def run_due(self, everything: bool = False) -> bool:
        """Start every invocation that is due (``everything``: also those waiting for a
        retry, as if their wait were over). Returns whether any was started."""
        now = self._clock.monotonic()
        started: list[_Task] = []
        with self._lock:
            while self._queue and (everything or self._queue[0].due <= now):
                started.append(heapq.heappop(self._queue))
            self._running += len(started)
        for task in started:
            if self._executor is None:
                self._attempt(task)
            else:
                self._executor.submit(self._attempt, task)
        return bool(started)

    def _attempt(self, task: _Task) -> None:
        try:
            self._try(task)
        finally:
            with self._lock:
                self._running -= 1

    def _try(self, task: _Task) -> None:
        if not task.accepted:
            if not self._admit(task.function):
                self._throttled(task)
                return
            task.accepted = True
        else:
            with self._lock:
                self._in_flight[task.function] = self._in_flight.get(task.function, 0) + 1
        try:
            self._run(task)
        finally:
            with self._lock:
                self._in_flight[task.function] -= 1

    def _admit(self, function: str) -> bool:
        """Take one of the function's concurrent executions; False: throttled."""
        limit = self._functions.settings(function).reserved_concurrency
        with self._lock:
            running = self._in_flight.get(function, 0)
            if limit is not None and running >= limit:
                return False
            self._in_flight[function] = running + 1
            return True

    def _throttled(self, task: _Task) -> None:
        """The Invoke call was throttled: the rule target's RetryPolicy, then its DLQ."""
        target = self._functions.settings(task.function).target
        with self._lock:
            self.throttled += 1
        age = self._clock.monotonic() - task.submitted
        condition = None
        if age >= target.maximum_event_age_seconds:
            condition = "MaximumEventAgeInSeconds"
        elif task.throttles >= target.maximum_retry_attempts:
            condition = "MaximumRetryAttempts"
        if condition is not None:
            self._target_gives_up(task, condition)
            return
        task.throttles += 1
        ceiling = min(TARGET_BACKOFF_CAP_SECONDS, 2.0**task.throttles)
        with self._lock:
            wait = self._random.uniform(0, ceiling)
            task.due = self._clock.monotonic() + wait
            heapq.heappush(self._queue, task)
        self._hop(
            f"{task.function}: throttled ({THROTTLED}), target retry {task.throttles} of "
            f"{target.maximum_retry_attempts} in {wait:.1f} s"
        )

    def _target_gives_up(self, task: _Task, condition: str) -> None:
        target = self._functions.settings(task.function).target
        queue = target.dead_letter_queue
        if queue:
            self._send(queue, task.event, self.dead_letter_attributes(task, condition))
            self._hop(f"{task.function}: target gave up ({condition}), event → {queue}")
        else:
            self._hop(
                f"{task.function}: target gave up ({condition}), event dropped: no DeadLetterConfig"
            )
        dropped = Dropped(task.function, task.event, condition, queue, throttled=True)
        with self._lock:
            self.dropped.append(dropped)
        if self._on_drop is not None:
            self._on_drop(dropped)

    def dead_letter_attributes(self, task: _Task, condition: str) -> dict[str, str]:
        """The message attributes EventBridge puts on a message in a target's DLQ."""
        return {
            "RULE_ARN": self._functions.rule_arn(task.function),
            "TARGET_ARN": self._functions.arn(task.function),
            "ERROR_CODE": "THROTTLING",
            "ERROR_MESSAGE": (
                f"{THROTTLED}: Rate Exceeded. "
                "(Reason: ReservedFunctionConcurrentInvocationLimitExceeded)"
            ),
            "EXHAUSTED_RETRY_CONDITION": condition,
            "RETRY_ATTEMPTS": str(task.throttles),
        }

    def _run(self, task: _Task) -> None:
        settings = self._functions.settings(task.function).invoke
        if (
            task.attempts
            and self._clock.monotonic() - task.submitted > settings.maximum_event_age_seconds
        ):
            self._give_up(task, "EventAgeExceeded", None)
            return
        started = ActivityLog.clock()
        outcome = self._functions.invoke(task.function, task.event)
        if self._activity is not None:
            source = async_source(task.event)
            self._activity.invoked(task.function, source, 1, outcome, started)
        task.attempts += 1
        if self._on_done is not None:
            self._on_done(task.function, task.event, outcome)
        if not outcome.failed:
            return
        if task.attempts > settings.maximum_retry_attempts:
            self._give_up(task, "RetriesExhausted", outcome)
            return
        wait = RETRY_WAIT_SECONDS * task.attempts
        self._hop(f"{task.function}: attempt {task.attempts} failed, retry in {wait} s")
        with self._lock:
            task.due = self._clock.monotonic() + wait
            heapq.heappush(self._queue, task)

    def _give_up(self, task: _Task, condition: str, outcome: Outcome | None) -> None:
        settings = self._functions.settings(task.function).invoke
        destination = settings.on_failure_queue or settings.dead_letter_queue
        if settings.on_failure_queue:
            self._send(settings.on_failure_queue, self.invocation_record(task, condition, outcome))
            self._hop(f"{task.function}: gave up ({condition}) → {settings.on_failure_queue}")
        elif settings.dead_letter_queue:
            self._send(settings.dead_letter_queue, task.event)
            self._hop(f"{task.function}: gave up ({condition}) → {settings.dead_letter_queue}")
        else:
            self._hop(f"{task.function}: gave up ({condition}), event dropped: no destination")
        dropped = Dropped(task.function, task.event, condition, destination)
        with self._lock:
            self.dropped.append(dropped)
        if self._on_drop is not None:
            self._on_drop(dropped)

    def invocation_record(
        self, task: _Task, condition: str, outcome: Outcome | None
    ) -> dict[str, Any]:
        """Lambda's on-failure invocation record for an asynchronous invocation."""
        error = (outcome.error if outcome else None) or ""
        error_type, _, message = error.partition(": ")
        return {
            "version": "1.0",
            "timestamp": _iso_millis(time.time()),
            "requestContext": {
                "requestId": outcome.request_id if outcome else "",
                "functionArn": self._functions.arn(task.function) + ":$LATEST",
                "condition": condition,
                "approximateInvokeCount": task.attempts,
            },
            "requestPayload": task.event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": message or error,
                "errorType": error_type if message else "Error",
                "stackTrace": [],
            },
        }


def _iso_millis(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
