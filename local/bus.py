"""EventBridge → ``on_cw_event`` handlers.

:class:`EventTap` subscribes a queue to every event on the bus (one catch-all rule with
an SQS target, so it works against moto or any AWS-compatible endpoint) and returns the
events with the full envelope Lambda receives. :class:`Router` takes the rules from the
Chalice app object itself and delivers each event to every handler whose pattern matches,
using :mod:`local.eventbridge`.

Example::

    tap = EventTap(sqs, events, account="123456789012", region="us-east-1")
    router = Router.from_app(app)
    for event in tap.drain():
        for rule in router.matching(event):
            rule.handler(event, None)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.eventbridge import InvalidEventPattern, validate
from local.eventbridge import matches as pattern_matches
from local.template import TargetSettings

TAP_NAME = "local-runtime-tap"
# Every EventBridge event has version "0": this rule sees them all.
CATCH_ALL = {"version": ["0"]}


class EventTap:
    """A queue that receives a copy of every event put on the bus."""

    def __init__(
        self, sqs: Any, events: Any, account: str, region: str, bus: str = "default"
    ) -> None:
        self._sqs = sqs
        self._account = account
        self._region = region
        self.bus = bus
        if bus != "default":
            try:
                events.create_event_bus(Name=bus)
            except events.exceptions.ResourceAlreadyExistsException:
                pass
        queue = TAP_NAME if bus == "default" else f"{TAP_NAME}-{bus}"
        self._queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(Name=TAP_NAME, EventBusName=bus, EventPattern=json.dumps(CATCH_ALL))
        events.put_targets(
            Rule=TAP_NAME, EventBusName=bus, Targets=[{"Id": TAP_NAME, "Arn": queue_arn}]
        )

    def drain(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """Events put on the bus since the last call, oldest first."""
        received: list[dict[str, Any]] = []
        while True:
            page = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_seconds if not received else 0,
            )
            messages = page.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(self.envelope(json.loads(message["Body"])))
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        """Fill in the envelope fields an emulator may leave out."""
        detail = event.get("detail", {})
        return {
            "version": str(event.get("version", "0")),
            "id": event.get("id") or str(uuid.uuid4()),
            "detail-type": event.get("detail-type", ""),
            "source": event.get("source", ""),
            "account": event.get("account") or self._account,
            "time": event.get("time", ""),
            "region": event.get("region") or self._region,
            "resources": event.get("resources", []),
            "detail": json.loads(detail) if isinstance(detail, str) else detail,
        }


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: dict[str, Any]
    handler: Callable[[dict[str, Any], Any], Any]
    enabled: bool = True
    bus: str = "default"


class Router:
    """Delivers events to the ``on_cw_event`` handlers whose pattern matches."""

    def __init__(self, rules: list[Rule]) -> None:
        for rule in rules:
            try:
                validate(rule.pattern)
            except InvalidEventPattern as err:
                raise ValueError(f"rule {rule.name!r}: {err}") from None
        self.rules = rules

    @classmethod
    def from_app(cls, app: Any, targets: Mapping[str, TargetSettings] | None = None) -> Router:
        """The rules a Chalice app registered with ``@app.on_cw_event``; their state and
        bus from the deployment's settings (``targets``, by function name)."""
        from chalice.app import CloudWatchEventConfig

        targets = targets or {}
        rules = [
            Rule(
                source.name,
                source.event_pattern,
                app.handler_map[source.name],
                targets.get(source.name, TargetSettings()).enabled,
                targets.get(source.name, TargetSettings()).event_bus,
            )
            for source in app.event_sources
            if isinstance(source, CloudWatchEventConfig)
        ]
        return cls(rules)

    @property
    def buses(self) -> set[str]:
        return {"default"} | {rule.bus for rule in self.rules}

    def why_not(self, event: dict[str, Any], bus: str = "default") -> list[tuple[str, str]]:
        """``(rule, reason)`` for every rule that does not take the event."""
        reasons: list[tuple[str, str]] = []
        for rule in self.rules:
            if rule.bus != bus:
                reasons.append((rule.name, f"rule is on bus {rule.bus}, the event on {bus}"))
            elif not rule.enabled:
                reasons.append((rule.name, "rule is DISABLED"))
            elif not pattern_matches(rule.pattern, event):
                reasons.append((rule.name, "event pattern does not match"))
        return reasons

    def matching(self, event: dict[str, Any], bus: str = "default") -> list[Rule]:
        """ENABLED rules of ``bus`` whose pattern matches (a DISABLED rule matches nothing)."""
        return [
            rule
            for rule in self.rules
            if rule.enabled and rule.bus == bus and pattern_matches(rule.pattern, event)
        ]
