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

Example::

    invocations = AsyncInvocations(functions, queues.send, hop=print)
    invocations.submit("invoice_processing", event)
    while invocations.run_due():      # in the runtime's pump loop
        pass
"""

from __future__ import annotations

import heapq
import itertools
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
Send = Callable[[str, dict[str, Any]], None]
RETRY_WAIT_SECONDS = 60


@dataclass(order=True)
class _Task:
    due: float
    order: int
    function: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    submitted: float = field(compare=False)
    attempts: int = field(default=0, compare=False)


@dataclass
class Dropped:
    function: str
    event: dict[str, Any]
    reason: str


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
        self.dropped: list[Dropped] = []

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
        if settings.on_failure_queue:
            self._send(settings.on_failure_queue, self.invocation_record(task, condition, outcome))
            self._hop(f"{task.function}: gave up ({condition}) → {settings.on_failure_queue}")
        elif settings.dead_letter_queue:
            self._send(settings.dead_letter_queue, task.event)
            self._hop(f"{task.function}: gave up ({condition}) → {settings.dead_letter_queue}")
        else:
            self._hop(f"{task.function}: gave up ({condition}), event dropped: no destination")
        dropped = Dropped(task.function, task.event, condition)
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
