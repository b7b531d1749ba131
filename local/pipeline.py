"""The event sources of a Chalice app, driven in-process: streams, bus, schedules.

:class:`Pipeline` finds the app's ``on_dynamodb_record``, ``on_cw_event`` and ``schedule``
handlers on the app object and feeds them as AWS would. :meth:`Pipeline.pump` does one
round of work and is what tests call; the runtime calls it from a thread in a loop.

Example::

    pipeline = Pipeline(app, AwsClients.from_session(session), account, region)
    client.http.post("/orders/7/events", ...)
    pipeline.run_until_idle()
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from local.bus import EventTap, Router
from local.streams import FailureQueue, StreamMapping, StreamReader

Hop = Callable[[str], None]
# EventBridge retries an asynchronous Lambda invocation twice before giving up.
EVENT_DELIVERY_ATTEMPTS = 3
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
    """Every event source of one Chalice app, fed from one AWS endpoint."""

    def __init__(
        self,
        app: Any,
        clients: AwsClients,
        account: str,
        region: str,
        on_hop: Hop | None = None,
        max_attempts: int = 3,
        stream_filters: dict[str, list[Any]] | None = None,
        event_workers: int = 1,
    ) -> None:
        from chalice.app import DynamoDBEventConfig, ScheduledEventConfig

        self.failures = FailureQueue()
        self._hop = on_hop or (lambda line: None)
        self.router = Router.from_app(app)
        self.tap = EventTap(clients.sqs, clients.events, account, region)
        self.mappings = [
            StreamMapping(
                name=source.name,
                handler=app.handler_map[source.name],
                reader=StreamReader(
                    clients.streams,
                    resolve_stream_arn(clients.dynamodb, source.stream_arn),
                    region,
                ),
                batch_size=source.batch_size,
                failures=self.failures,
                window_seconds=source.maximum_batching_window_in_seconds,
                max_attempts=max_attempts,
                on_hop=self._hop,
                filters=(stream_filters or {}).get(source.name),
            )
            for source in app.event_sources
            if isinstance(source, DynamoDBEventConfig)
        ]
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
        # Lambda runs asynchronous invocations side by side; 1 keeps tests deterministic.
        self._pool = ThreadPoolExecutor(event_workers) if event_workers > 1 else None
        self._in_flight: set[Future[None]] = set()

    def pump(self) -> bool:
        """One round: one batch per stream mapping, then every event on the bus."""
        worked = False
        for mapping in self.mappings:
            worked = mapping.step() or worked
        for event in self.tap.drain():
            worked = True
            if self._pool is None:
                self._route(event)
            else:
                future = self._pool.submit(self._route, event)
                self._in_flight.add(future)
                future.add_done_callback(self._in_flight.discard)
        return worked

    def settle(self) -> None:
        """Wait for the events being delivered right now."""
        wait(list(self._in_flight))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def run_until_idle(self, max_rounds: int = 10_000) -> None:
        """Pump until streams and bus are empty (tests; batching windows are skipped)."""
        for _ in range(max_rounds):
            worked = self.pump()
            self.settle()
            if not worked and all(m.idle for m in self.mappings):
                return
            for mapping in self.mappings:
                mapping.flush_window()
        raise RuntimeError("pipeline did not settle")

    def run_schedules(self) -> None:
        """Run every ``@app.schedule`` handler once."""
        for schedule in self.schedules:
            self._hop(f"schedule → {schedule.name}: {self.run_schedule(schedule)}")

    def run_schedule(self, schedule: Schedule) -> Any:
        """Run one ``@app.schedule`` handler with a scheduled event; return its result."""
        return schedule.handler(_scheduled_event(schedule), None)

    def _route(self, event: dict[str, Any]) -> None:
        detail = event.get("detail") or {}
        self._hop(
            f"[order {detail.get('OrderID', '-')}] aggregated event: "
            f"status={detail.get('status', '-')}"
        )
        self.delivered.append(event)
        pending = self.router.matching(event)
        for rule in pending:
            self._hop(f"[order {detail.get('OrderID', '-')}] rule matched → {rule.name}")
        for attempt in range(1, EVENT_DELIVERY_ATTEMPTS + 1):
            failed = [r for r in pending if _invoke(r.handler, event, self._hop, detail)]
            if not failed:
                return
            pending = failed
            if attempt == EVENT_DELIVERY_ATTEMPTS:
                for rule in failed:
                    self.failures.add(rule.name, [event], "event delivery failed")


def _invoke(
    handler: Callable[..., Any], event: dict[str, Any], hop: Hop, detail: dict[str, Any]
) -> bool:
    """Call one handler; True if it raised."""
    order = detail.get("OrderID", "-")
    try:
        outcome = handler(event, None)
    except Exception as err:  # noqa: BLE001 - a handler's crash is data here
        hop(f"[order {order}] handler failed: {type(err).__name__}: {err}")
        return True
    hop(f"[order {order}] handler done" + (f": {outcome}" if outcome else ""))
    return False


def _expression(expression: Any) -> str:
    return expression if isinstance(expression, str) else str(expression.to_string())


def _scheduled_event(schedule: Schedule) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "local-schedule",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "",
        "region": "local",
        "resources": [f"local:rule/{schedule.name}"],
        "detail": {},
    }
