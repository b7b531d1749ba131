"""The event sources of a Chalice app, driven in-process: streams, bus, schedules.

:class:`Pipeline` finds the app's ``on_dynamodb_record``, ``on_cw_event`` and ``schedule``
handlers on the app object and feeds them as AWS would. :meth:`Pipeline.pump` does one
round of work and is what tests call; the runtime calls it from a thread in a loop.

Example::

    pipeline = Pipeline(app, AwsClients.from_session(session), account, region)
    client.http.post("/items", ...)   # the app writes; its stream and bus handlers run
    pipeline.run_until_idle()
"""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from local.activity import ActivityLog
from local.asyncinvoke import AsyncInvocations
from local.bus import EventTap, Router
from local.lambdas import Clock, Functions, Outcome
from local.plugins import Hop as PluginHop
from local.resources import LocalQueues
from local.streams import FailureQueue, StreamMapping, StreamReader
from local.template import ProjectSettings, StreamSettings

# A note (str) or a hop the app's plug-in may word (local.plugins.Hop).
Hop = Callable[[str | PluginHop], None]


class Source(Protocol):
    """An event source the pump steps: a queue, topic or bucket trigger."""

    @property
    def idle(self) -> bool: ...

    def step(self) -> bool: ...

    def close(self) -> None: ...


_UNIT_SECONDS = {
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}


@dataclass(frozen=True)
class AwsClients:
    dynamodb: Any
    streams: Any
    sqs: Any
    events: Any

    @classmethod
    def from_session(cls, session: Any, **client_kwargs: Any) -> AwsClients:
        return cls(
            *(
                session.client(name, **client_kwargs)
                for name in ("dynamodb", "dynamodbstreams", "sqs", "events")
            )
        )


@dataclass(frozen=True)
class Schedule:
    name: str
    expression: str
    seconds: float
    handler: Callable[[dict[str, Any], Any], Any]


def schedule_seconds(expression: str) -> float:
    """Seconds between runs of a ``rate(...)`` expression; cron runs every minute here."""
    found = re.fullmatch(r"rate\((\d+) (\w+)\)", expression.strip())
    if not found:
        return 60.0
    return int(found.group(1)) * _UNIT_SECONDS.get(found.group(2), 60)


def resolve_stream_arn(dynamodb: Any, configured: str) -> str:
    """The stream the handler meant: its ARN as configured, or its table's latest one."""
    found = re.search(r":table/([^/]+)", configured)
    if not found:
        raise ValueError(f"not a DynamoDB stream ARN: {configured!r}")
    table = dynamodb.describe_table(TableName=found.group(1))["Table"]
    latest: str = table.get("LatestStreamArn", "")
    if not latest:
        raise ValueError(f"table {found.group(1)!r} has no stream")
    return latest


class Pipeline:
    """Every event source of one Chalice app, fed from one AWS endpoint.

    ``settings`` are the app's deployment settings (:class:`local.template.ProjectSettings`);
    by default they are read from ``project_dir`` (default: the working directory, as
    Chalice's CLI does). ``stream_workers`` > 1 runs that many stream batches at once
    (``ParallelizationFactor`` lanes); 1 runs them one after another (tests).
    ``stream_overrides`` replaces settings of every stream mapping, by
    :class:`local.template.StreamSettings` field name (tests that pin one aspect).
    """

    def __init__(
        self,
        app: Any,
        clients: AwsClients,
        account: str,
        region: str,
        on_hop: Hop | None = None,
        stream_filters: dict[str, list[Any]] | None = None,
        event_workers: int = 1,
        settings: ProjectSettings | None = None,
        project_dir: Path | None = None,
        clock: Clock | None = None,
        shards: int = 1,
        stream_workers: int = 1,
        duplicate_rate: float = 0.0,
        seed: int | None = None,
        function_prefix: str | None = None,
        stream_overrides: dict[str, Any] | None = None,
        functions: Functions | None = None,
        stream_poll_seconds: float = 0.0,
    ) -> None:
        self.settings = settings or ProjectSettings.load(
            project_dir or Path.cwd(), app, None, dict(os.environ)
        )
        self.clock = clock or Clock()
        self.account = account
        self.region = region
        self.failures = FailureQueue()
        self.activity = ActivityLog()  # what the web UI shows (local.ui)
        self._hop = on_hop or (lambda line: None)
        self._clients = clients
        self.functions = functions or Functions(
            {**app.handler_map, "api_handler": app},  # the REST API's function is the app
            self.settings.functions,
            self.clock,
            account,
            region,
            function_prefix or f"{app.app_name}-local",
        )
        self.router = Router.from_app(
            app, {name: f.target for name, f in self.settings.functions.items()}
        )
        self.taps = [
            EventTap(clients.sqs, clients.events, account, region, bus)
            for bus in sorted(self.router.buses)
        ]
        self._random = random.Random(seed)
        self._duplicate_rate = duplicate_rate
        self._queues = LocalQueues(clients.sqs)
        for queue in self.settings.queues.values():
            self._queues.ensure(queue, self.settings.queues)
        self._stream_pool = ThreadPoolExecutor(stream_workers) if stream_workers > 1 else None
        self._shards = shards
        self._seed = seed
        self._stream_poll_seconds = stream_poll_seconds
        self.mappings = [
            self._mapping(
                replace(
                    _with_filters(stream, (stream_filters or {}).get(stream.function)),
                    **(stream_overrides or {}),
                ),
                StreamReader(
                    clients.streams,
                    resolve_stream_arn(clients.dynamodb, stream.stream_arn),
                    region,
                    stream.starting_position,
                ),
            )
            for stream in self.settings.streams.values()
        ]
        from chalice.app import ScheduledEventConfig

        self.schedules = [
            Schedule(
                source.name,
                _expression(source.schedule_expression),
                schedule_seconds(_expression(source.schedule_expression)),
                app.handler_map[source.name],
            )
            for source in app.event_sources
            if isinstance(source, ScheduledEventConfig)
        ]
        self.delivered: list[dict[str, Any]] = []
        # Queue, topic and bucket triggers (local.sources): step()ed with the rest.
        self.sources: list[Source] = []
        # Lambda runs asynchronous invocations side by side; 1 keeps tests deterministic.
        self._pool = ThreadPoolExecutor(event_workers) if event_workers > 1 else None
        self.invocations = AsyncInvocations(
            self.functions,
            self._queues.send,
            hop=self._hop,
            executor=self._pool,
            on_done=self._said_done,
            on_drop=lambda d: self.failures.add(d.function, [d.event], f"event {d.reason}"),
            activity=self.activity,
            seed=seed,
        )

    def pump(self, everything: bool = False) -> bool:
        """One round: due stream batches of every mapping, every event on the bus, due
        asynchronous invocations (``everything``: retries without their wait)."""
        worked = False
        for mapping in self.mappings:
            worked = mapping.step() or worked
        for tap in self.taps:
            for event in tap.drain():
                worked = True
                self._route(event, tap.bus)
        for source in self.sources:
            worked = source.step() or worked
        return self.invocations.run_due(everything) or worked

    def settle(self) -> None:
        """Wait for the invocations running right now."""
        while not self.invocations.idle and self.invocations.running:
            time.sleep(0.005)

    def add_stream(self, settings: StreamSettings, reader: StreamReader) -> StreamMapping:
        """Another stream mapping (a Kinesis trigger), played like the DynamoDB ones."""
        mapping = self._mapping(settings, reader)
        self.mappings.append(mapping)
        return mapping

    def _mapping(self, settings: StreamSettings, reader: StreamReader) -> StreamMapping:
        return StreamMapping(
            settings,
            self.functions,
            reader,
            self.failures,
            on_hop=self._hop,
            destination=self._queues.send,
            shards=self._shards,
            executor=self._stream_pool,
            duplicate_rate=self._duplicate_rate,
            seed=self._seed,
            activity=self.activity,
            idle_poll_seconds=self._stream_poll_seconds,
        )

    def close(self) -> None:
        for source in self.sources:
            source.close()
        for pool in (self._pool, self._stream_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.functions.close()

    def run_until_idle(self, max_rounds: int = 10_000) -> None:
        """Pump until streams, bus and invocations are done (tests: batching windows and
        retry waits are skipped)."""
        for _ in range(max_rounds):
            for mapping in self.mappings:
                mapping.flush_window()
            worked = self.pump(everything=True)
            self.settle()
            if (
                not worked
                and self.invocations.idle
                and all(m.idle for m in self.mappings)
                and all(s.idle for s in self.sources)
            ):
                return
        raise RuntimeError("pipeline did not settle")

    def run_schedules(self) -> None:
        """Run every ``@app.schedule`` handler once."""
        for schedule in self.schedules:
            value = self.run_schedule(schedule)
            self._hop(PluginHop(schedule.name, "schedule", 1, "ok", {}, str(value)))

    def run_schedule(self, schedule: Schedule) -> Any:
        """Run one ``@app.schedule`` handler with a scheduled event; return its result
        (its exception is raised again; a timeout raises :class:`TimeoutError`)."""
        outcome = self.functions.invoke(schedule.name, self.scheduled_event(schedule))
        if outcome.exception is not None:
            raise outcome.exception
        if outcome.failed:
            raise (TimeoutError if outcome.timed_out else RuntimeError)(outcome.error)
        return outcome.value

    def submit_schedule(self, schedule: Schedule) -> None:
        """Invoke a schedule's function asynchronously, as EventBridge does (Lambda's
        retries and destinations apply)."""
        self.invocations.submit(schedule.name, self.scheduled_event(schedule))

    def scheduled_event(self, schedule: Schedule) -> dict[str, Any]:
        """EventBridge's scheduled event: ISO time, region, account, the rule's ARN."""
        rule = self.functions.deployed_name(schedule.name)
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{self.account}:rule/{rule}"],
            "detail": {},
        }

    def _route(self, event: dict[str, Any], bus: str = "default") -> None:
        """Each matching rule's target is invoked asynchronously (at least once: with
        ``duplicate_rate``, some events are delivered twice, as EventBridge may)."""
        what = f"{event.get('source')} / {event.get('detail-type')} on {bus}"
        self._hop(PluginHop("", "eventbridge", 1, "received", event, what))
        self.delivered.append(event)
        copies = 2 if self._duplicate_rate and self._random.random() < self._duplicate_rate else 1
        matched = self.router.matching(event, bus)
        self.activity.routed(
            event,
            bus,
            [(rule.name, self.functions.deployed_name(rule.name)) for rule in matched],
            self.router.why_not(event, bus),
        )
        for rule in matched:
            self._hop(PluginHop(rule.name, "eventbridge", 1, "matched", event))
            for copy in range(copies):
                if copy:
                    self._hop(PluginHop(rule.name, "eventbridge", 1, "delivered again", event))
                self.invocations.submit(rule.name, event)

    def _said_done(self, function: str, event: dict[str, Any], outcome: Outcome) -> None:
        self._hop(outcome_hop(function, event_source(event), event, outcome))


def event_source(event: Any) -> str:
    """The event source an asynchronous invocation's event came from, by its shape."""
    if isinstance(event, dict) and "detail-type" in event and "source" in event:
        if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
            return "schedule"
        return "eventbridge"
    return "lambda"


def outcome_hop(function: str, source: str, event: Any, outcome: Outcome) -> PluginHop:
    """An invocation's result as a hop (``ok`` with the value, ``failed`` with the error)."""
    shown = event if isinstance(event, dict) else {"payload": event}
    if outcome.failed:
        hint = f" {outcome.hint}" if outcome.hint else ""
        return PluginHop(function, source, 1, "failed", shown, f"{outcome.error}{hint}")
    value = outcome.value
    return PluginHop(function, source, 1, "ok", shown, "" if value is None else str(value))


def _with_filters(stream: StreamSettings, filters: list[Any] | None) -> StreamSettings:
    return stream if filters is None else replace(stream, filters=filters)


def _expression(expression: Any) -> str:
    return expression if isinstance(expression, str) else str(expression.to_string())
