"""Deterministic concurrency: threads that take turns at every AWS call.

Lambda runs concurrent invocations truly side by side. Races between them (read, then
write) happen between AWS calls, so that is where this scheduler interleaves them: each
task runs in its own thread, only one thread runs at a time, and before every botocore API
call the running thread hands the turn to a task drawn from a seeded random generator
(possibly itself). The same seed gives the same interleaving, every run.

Example::

    scheduler = LockstepScheduler(seed=7)
    scheduler.install(monkeypatch)            # turns are taken at every boto3 call
    outcomes = scheduler.run([lambda: handler(e) for e in events])
    outcomes[0].value, outcomes[0].error
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.client import BaseClient


@dataclass(frozen=True)
class TaskOutcome[T]:
    """What one task returned, or the exception it raised."""

    value: T | None = None
    error: BaseException | None = None


class LockstepScheduler:
    """Runs tasks in threads, one at a time, switching at AWS calls in a seeded order."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._local = threading.local()
        self._gates: dict[int, threading.Event] = {}
        self._runnable: list[int] = []
        self.switches = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> LockstepScheduler:
        """Make every botocore API call a turn point (a no-op outside :meth:`run`)."""
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        scheduler = self

        def turn_then_call(client: BaseClient, operation: str, params: Any) -> Any:
            scheduler.turn()
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", turn_then_call)
        return self

    def _pick(self) -> int | None:
        return self._rng.choice(sorted(self._runnable)) if self._runnable else None

    def turn(self) -> None:
        """Give the turn to a seeded choice of the runnable tasks; wait to get it back."""
        index: int | None = getattr(self._local, "index", None)
        if index is None:
            return
        chosen = self._pick()
        if chosen is None or chosen == index:
            return
        self.switches += 1
        gate = self._gates[index]
        gate.clear()
        self._gates[chosen].set()
        gate.wait()

    def run[T](self, tasks: Sequence[Callable[[], T]]) -> list[TaskOutcome[T]]:
        """Run ``tasks`` "concurrently" (interleaved at AWS calls); their outcomes in order."""
        if not tasks:
            return []
        outcomes: list[TaskOutcome[T]] = [TaskOutcome() for _ in tasks]
        self._gates = {i: threading.Event() for i in range(len(tasks))}
        self._runnable = list(range(len(tasks)))
        finished = threading.Event()

        def body(index: int) -> None:
            self._local.index = index
            self._gates[index].wait()
            try:
                outcomes[index] = TaskOutcome(value=tasks[index]())
            except BaseException as err:  # noqa: BLE001 - a task's failure is its outcome
                outcomes[index] = TaskOutcome(error=err)
            finally:
                self._local.index = None
                self._runnable.remove(index)
                chosen = self._pick()
                if chosen is None:
                    finished.set()
                else:
                    self._gates[chosen].set()

        threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(len(tasks))]
        for thread in threads:
            thread.start()
        first = self._pick()
        assert first is not None
        self._gates[first].set()
        finished.wait()
        for thread in threads:
            thread.join()
        return outcomes


def run_sequentially[T](tasks: Sequence[Callable[[], T]], seed: int = 0) -> list[TaskOutcome[T]]:
    """The same contract as :meth:`LockstepScheduler.run`, one task after another in a
    seeded order (no interleaving): for callers that want ordering effects only."""
    order = list(range(len(tasks)))
    random.Random(seed).shuffle(order)
    outcomes: list[TaskOutcome[T]] = [TaskOutcome() for _ in tasks]
    for index in order:
        try:
            outcomes[index] = TaskOutcome(value=tasks[index]())
        except Exception as err:  # noqa: BLE001 - a task's failure is its outcome
            outcomes[index] = TaskOutcome(error=err)
    return outcomes


Runner = Callable[[Sequence[Callable[[], Any]]], list[TaskOutcome[Any]]]
