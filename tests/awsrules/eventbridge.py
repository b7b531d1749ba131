"""EventBridge: PutEvents' documented limits and at-least-once delivery to targets.

Rules played here:

* PutEvents takes 1 to 10 entries
  (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html) and
  "The total entry size must be less than 256KB", where an entry's size is: ``Time``
  14 bytes if given; ``Source`` and ``DetailType`` their UTF-8 bytes; ``Detail`` its
  UTF-8 bytes if given; each ``Resources`` entry its UTF-8 bytes
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html). A
  request over a limit is refused as a whole with ``ValidationException`` (a botocore
  ``ClientError``, as boto3 raises it); nothing of it reaches the bus.
* Delivery is at least once: a matched event may reach a target more than once, and
  nothing orders deliveries (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html;
  a Lambda target is invoked asynchronously, see :mod:`tests.awsrules.lambda_async`).
* Rule matching uses the project's EventBridge pattern matcher (``local.eventbridge``,
  checked against AWS-recorded outcomes).

Example::

    bus = PutEventsBus(account, region).install(monkeypatch)   # in front of moto
    ...                                      # the app publishes
    delivery = EventBridgeDelivery(targets, copies=8, seed=1, invoker=invoker)
    report = delivery.deliver(bus.take())
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from local.eventbridge import matches
from tests.awsrules.lambda_async import AsyncInvocation, AsyncInvoker, AsyncReport

MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024
TIME_BYTES = 14
TOO_LARGE_MESSAGE = "Total size of the entries in the request is over the limit."


def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def entry_size(entry: Mapping[str, Any]) -> int:
    """A ``PutEventsRequestEntry``'s size as EventBridge calculates it (eb-putevent-size)."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    size += _utf8(entry.get("Source", "")) + _utf8(entry.get("DetailType", ""))
    if entry.get("Detail") is not None:
        size += _utf8(entry["Detail"])
    for resource in entry.get("Resources") or []:
        if resource is not None:
            size += _utf8(resource)
    return size


def request_size(entries: Sequence[Mapping[str, Any]]) -> int:
    return sum(entry_size(e) for e in entries)


def validation_error(message: str) -> ClientError:
    response: Any = {
        "Error": {"Code": "ValidationException", "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return ClientError(response, "PutEvents")


def check_put_events(entries: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``ValidationException`` for a request EventBridge refuses as a whole."""
    if not 1 <= len(entries) <= MAX_ENTRIES_PER_CALL:
        raise validation_error(
            f"1 validation error detected: Value at 'entries' failed to satisfy constraint: "
            f"Member must have length between 1 and {MAX_ENTRIES_PER_CALL} "
            f"(got {len(entries)})"
        )
    if request_size(entries) >= MAX_REQUEST_BYTES:
        raise validation_error(TOO_LARGE_MESSAGE)


@dataclass(frozen=True)
class PutEventsCall:
    """One PutEvents request the app made: its size and whether it was refused."""

    entries: int
    size: int
    refused: bool


class PutEventsBus:
    """In front of moto's PutEvents: enforces the limits, records calls, keeps the events
    that reached the bus (with the envelope a target receives)."""

    def __init__(self, account: str = "123456789012", region: str = "us-east-1") -> None:
        self.account = account
        self.region = region
        self.calls: list[PutEventsCall] = []
        self.events: list[dict[str, Any]] = []
        self._taken = 0
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> PutEventsBus:
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        bus = self

        def checked(client: BaseClient, operation: str, params: Any) -> Any:
            if operation != "PutEvents" or client.meta.service_model.service_name != "events":
                return original(client, operation, params)
            return bus._put_events(lambda: original(client, operation, params), params)

        monkeypatch.setattr(BaseClient, "_make_api_call", checked)
        return self

    def _put_events(self, call: Callable[[], Any], params: Mapping[str, Any]) -> Any:
        entries = list(params.get("Entries", []))
        try:
            check_put_events(entries)
        except ClientError:
            self._record(PutEventsCall(len(entries), request_size(entries), True), [])
            raise
        response = call()
        accepted = [
            self.envelope(entry, str(result["EventId"]))
            for entry, result in zip(entries, response.get("Entries", []), strict=False)
            if result.get("EventId") and not result.get("ErrorCode")
        ]
        self._record(PutEventsCall(len(entries), request_size(entries), False), accepted)
        return response

    def _record(self, call: PutEventsCall, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self.calls.append(call)
            self.events.extend(events)

    def envelope(self, entry: Mapping[str, Any], event_id: str) -> dict[str, Any]:
        """The event as a rule target receives it."""
        detail = entry.get("Detail")
        return {
            "version": "0",
            "id": event_id,
            "detail-type": entry.get("DetailType", ""),
            "source": entry.get("Source", ""),
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": list(entry.get("Resources") or []),
            "detail": json.loads(detail) if isinstance(detail, str) else {},
        }

    def take(self) -> list[dict[str, Any]]:
        """Events that reached the bus since the last call."""
        with self._lock:
            fresh = self.events[self._taken :]
            self._taken = len(self.events)
        return fresh

    @property
    def largest_request(self) -> int:
        return max((c.size for c in self.calls), default=0)


@dataclass(frozen=True)
class Target:
    """A rule and its Lambda target."""

    name: str
    pattern: Mapping[str, Any]
    handler: Callable[[dict[str, Any]], Any]


@dataclass
class EventBridgeDelivery:
    """Delivers each matched event ``copies`` times (at least once), shuffled (no order),
    to the targets, through Lambda's asynchronous invocation."""

    targets: Sequence[Target]
    invoker: AsyncInvoker
    copies: int = 1
    seed: int = 0
    reports: list[AsyncReport] = field(default_factory=list)

    def invocations(self, events: Sequence[dict[str, Any]]) -> list[AsyncInvocation]:
        planned = [
            AsyncInvocation(target.name, target.handler, event)
            for event in events
            for target in self.targets
            if matches(target.pattern, event)
            for _ in range(self.copies)
        ]
        random.Random(self.seed + len(self.reports)).shuffle(planned)
        return planned

    def deliver(self, events: Sequence[dict[str, Any]]) -> AsyncReport:
        report = self.invoker.run(self.invocations(events))
        self.reports.append(report)
        return report
