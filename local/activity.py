"""What the runtime did, as structured records: every invocation and every routed event.

The pipeline feeds an :class:`ActivityLog` (stream batches in :mod:`local.streams`,
asynchronous invocations in :mod:`local.asyncinvoke`, routed events in
:mod:`local.pipeline`); the web UI (:mod:`local.ui`) reads it. It is a bounded ring
buffer per kind, safe to write from any thread; each record has a sequence number so a
reader asks only for what is new.

Example::

    log = ActivityLog()
    started = log.clock()
    outcome = functions.invoke("aggregator", event)
    log.invoked("aggregator", "dynamodb", 2, outcome, started)
    log.snapshot()["invocations"][0]["result"]      # "ok"
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from local.lambdas import Outcome

LIMIT = 500
SHOWN_CHARS = 300


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def result_of(outcome: Outcome) -> str:
    """``failed`` (an error or a timeout), ``partial`` (a ``batchItemFailures`` answer
    naming records) or ``ok``."""
    if outcome.failed:
        return "timeout" if outcome.timed_out else "failed"
    value = outcome.value
    if isinstance(value, dict) and value.get("batchItemFailures"):
        return "partial"
    return "ok"


def async_source(event: dict[str, Any]) -> str:
    """``schedule`` for EventBridge's scheduled event, else ``eventbridge``."""
    scheduled = event.get("detail-type") == "Scheduled Event" and event.get("source") == (
        "aws.events"
    )
    return "schedule" if scheduled else "eventbridge"


class ActivityLog:
    """Bounded, thread-safe records of invocations and routed events, newest kept."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._invocations: deque[dict[str, Any]] = deque(maxlen=limit)
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)
        self.version = 0

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    def invoked(
        self, function: str, source: str, records: int, outcome: Outcome, started: float
    ) -> None:
        """One invocation of ``function`` for ``records`` records from ``source``."""
        entry = {
            "function": function,
            "source": source,
            "records": records,
            "result": result_of(outcome),
            "error": outcome.error,
            "value": None if outcome.failed else _short(outcome.value),
            "durationMs": round((time.monotonic() - started) * 1000, 1),
            "requestId": outcome.request_id,
        }
        self._add(self._invocations, entry)

    def served(self, method: str, path: str, status: int, started: float) -> None:
        """One HTTP request served by the app's routes (``api_handler``)."""
        result = "ok" if status < 400 else "client-error" if status < 500 else "failed"
        entry = {
            "function": "api_handler",
            "source": "api",
            "records": 1,
            "result": result,
            "error": None if status < 400 else f"HTTP {status}",
            "value": f"{method} {path} → {status}",
            "durationMs": round((time.monotonic() - started) * 1000, 1),
            "requestId": "",
        }
        self._add(self._invocations, entry)

    def refused(self, entry: dict[str, Any], code: str, message: str) -> None:
        """A ``PutEvents`` entry EventBridge refused: it never reached the bus."""
        detail: Any = entry.get("Detail")
        try:
            detail = json.loads(detail) if isinstance(detail, str) else detail
        except ValueError:
            pass
        record = {
            "bus": str(entry.get("EventBusName") or "default"),
            "eventId": "",
            "source": entry.get("Source", ""),
            "detailType": entry.get("DetailType", ""),
            "detail": detail,
            "matched": [],
            "unmatched": [],
            "refused": f"{code}: {message}",
        }
        self._add(self._events, record)

    def routed(
        self,
        event: dict[str, Any],
        bus: str,
        matched: Iterable[tuple[str, str]],
        unmatched: Iterable[tuple[str, str]],
    ) -> None:
        """One event on ``bus``: ``(rule, target)`` matched, ``(rule, why not)`` not."""
        entry = {
            "bus": bus,
            "eventId": event.get("id", ""),
            "source": event.get("source", ""),
            "detailType": event.get("detail-type", ""),
            "detail": event.get("detail"),
            "matched": [{"rule": rule, "target": target} for rule, target in matched],
            "unmatched": [{"rule": rule, "reason": reason} for rule, reason in unmatched],
        }
        self._add(self._events, entry)

    def _add(self, into: deque[dict[str, Any]], entry: dict[str, Any]) -> None:
        with self._lock:
            entry["seq"] = next(self._ids)
            entry["at"] = time.time()
            into.append(entry)
            self.version += 1

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """Records newer than sequence number ``since``, newest first."""
        with self._lock:
            return {
                "version": self.version,
                "invocations": [e for e in reversed(self._invocations) if e["seq"] > since],
                "events": [e for e in reversed(self._events) if e["seq"] > since],
            }
