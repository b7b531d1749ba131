"""The app on moto behind the documented-rules stand-in (:mod:`tests.awsrules`).

:class:`Stack` is what the deployed stack does around the app's handlers: the aggregator's
stream trigger with the template's settings, the stream failure queue, EventBridge rules
with their Lambda targets, the schedule and the ``stream_recovery`` queue trigger. Tests
write as sources do (the HTTP API, or ``PutItem`` straight into the table), run the
stand-in, and look at what a user sees (``GET``, the table, ``Order sent`` lines).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.retries.standard
import pytest
from chalice.local import LambdaContext
from chalice.test import Client

from chalicelib import clock, table
from chalicelib.config import get_settings
from local.filters import stream_filters
from local.pipeline import AwsClients, resolve_stream_arn
from scripts.render_template import STREAM_FAILURE_HANDLING
from tests.awsrules.eventbridge import EventBridgeDelivery, PutEventsBus, Target
from tests.awsrules.lambda_async import AsyncInvoker, AsyncReport
from tests.awsrules.lambda_streams import (
    MappingReport,
    Shard,
    SqsSink,
    StreamEventSourceMapping,
    StreamMappingConfig,
    filtered,
    read_shards,
)
from tests.awsrules.scheduler import LockstepScheduler, run_sequentially
from tests.awsrules.sqs import SqsEventSource, SqsReport
from tests.guarantees.observe import OrderSentLog, order_sent_log
from tests.helpers import ACCOUNT, REGION, ROOT, TABLE

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CHECKS = ("Account Check", "In Stock")
STREAM_RECOVERY = "stream_recovery"
LAMBDA_TIMEOUT_MS = 60_000  # Chalice's default function timeout


class Clock:
    """``chalicelib.clock.now``, moved by the test (and by Lambda's retry waits)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def fixed_width(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")


def failure_queue_name() -> str:
    """The aggregator's stream on-failure queue (CONTRACT: ``settings.stream_failure_queue``,
    default ``<TABLE_NAME>-stream-failures``)."""
    settings = get_settings()
    return str(getattr(settings, "stream_failure_queue", f"{settings.table_name}-stream-failures"))


@dataclass
class Stack:
    """The app's handlers wired as the deployed stack wires them, on moto."""

    app: Any
    client: Client
    aws: AwsClients
    clock: Clock
    bus: PutEventsBus
    scheduler: LockstepScheduler
    sent: OrderSentLog
    failure_queue_url: str
    throttled: set[str] = field(default_factory=set)
    mapping_reports: list[MappingReport] = field(default_factory=list)
    deliveries: list[AsyncReport] = field(default_factory=list)

    # --- sources --------------------------------------------------------------------

    def post(self, order_id: str, check: str, status: str, **extra: Any) -> Any:
        return self.client.http.post(
            f"/orders/{order_id}/events",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"name": check, "status": status, **extra}),
        )

    def direct_write(
        self, order_id: str, check: str, status: str, reason: str | None = None
    ) -> None:
        """``PutItem`` straight into the table, following the README's item schema."""
        self.aws.dynamodb.put_item(
            TableName=TABLE, Item=self.result_item(order_id, check, status, reason)
        )

    def result_item(
        self, order_id: str, check: str, status: str, reason: str | None = None
    ) -> dict[str, Any]:
        """A source-event item as the README's "Writing results directly" table defines it."""
        occurred = fixed_width(self.clock.now)
        digest = hashlib.sha256(f"{status}\x00{reason or ''}".encode()).hexdigest()[:16]
        item: dict[str, Any] = {
            table.PARTITION_KEY: {"S": order_id},
            table.SORT_KEY: {"S": check},
            "Status": {"S": status},
            "OccurredAt": {"S": occurred},
            "Digest": {"S": digest},
            "Revision": {"S": f"{occurred}|{digest}"},
        }
        if reason is not None:
            item["Reason"] = {"S": reason}
        return item

    # --- the stream trigger ---------------------------------------------------------

    def shard(self) -> Shard:
        """The table's stream as the aggregator sees it (the template's FilterCriteria)."""
        arn = resolve_stream_arn(self.aws.dynamodb, get_settings().stream_arn)
        shards = read_shards(self.aws.streams, arn, REGION)
        assert len(shards) == 1, "moto keeps one shard per stream"
        patterns = stream_filters(ROOT, list(self.app.handler_map)).get("aggregator", [])
        return filtered(shards[0], patterns)

    def mapping_config(self, **overrides: Any) -> StreamMappingConfig:
        """The aggregator's trigger as deployed (decorator + template settings)."""
        properties = {**STREAM_FAILURE_HANDLING, **overrides}
        source = next(s for s in self.app.event_sources if getattr(s, "name", "") == "aggregator")
        return StreamMappingConfig.from_properties(
            properties,
            batch_size=int(source.batch_size),
            function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aggregator",
        )

    def run_stream(
        self, seed: int = 0, concurrent: bool = False, **overrides: Any
    ) -> MappingReport:
        """Deliver the whole stream to the aggregator; discarded batches go to the
        failure queue."""
        mapping = StreamEventSourceMapping(
            self.mapping_config(**overrides),
            self.handler("aggregator"),
            SqsSink(self.aws.sqs, self.failure_queue_url),
            seed=seed,
            runner=self.scheduler.run if concurrent else None,
            now=self.clock,
        )
        report = mapping.run(self.shard())
        self.mapping_reports.append(report)
        return report

    # --- handlers -------------------------------------------------------------------

    def handler(self, name: str) -> Callable[[dict[str, Any]], Any]:
        """The app's own handler for ``name`` (Chalice's wrapper, a Lambda context)."""
        function = self.app.handler_map[name]

        def invoke(event: dict[str, Any]) -> Any:
            return function(event, LambdaContext(name, 128, max_runtime_ms=LAMBDA_TIMEOUT_MS))

        return invoke

    def targets(self) -> list[Target]:
        from chalice.app import CloudWatchEventConfig

        return [
            Target(s.name, s.event_pattern, self.handler(s.name))
            for s in self.app.event_sources
            if isinstance(s, CloudWatchEventConfig)
        ]

    def deliver(self, copies: int = 1, seed: int = 0, concurrent: bool = False) -> AsyncReport:
        """Deliver every event that reached the bus (``copies`` times each, shuffled) to
        the rule targets, with Lambda's asynchronous retries."""
        invoker = AsyncInvoker(
            runner=self.scheduler.run if concurrent else (lambda t: run_sequentially(t, seed)),
            wait=self.clock.advance,
            account=ACCOUNT,
            region=REGION,
        )
        delivery = EventBridgeDelivery(self.targets(), invoker, copies=copies, seed=seed)
        report = delivery.deliver(self.bus.take())
        self.deliveries.append(report)
        return report

    def replies(self) -> list[tuple[str, Any]]:
        """Every successful target reply, with the order its event was about."""
        return [
            (str(a.invocation.event["detail"].get("OrderID")), a.response)
            for report in self.deliveries
            for a in report.attempts
            if a.error is None
        ]

    @property
    def has_recovery(self) -> bool:
        return STREAM_RECOVERY in self.app.handler_map

    def recover_if_present(self) -> SqsReport | None:
        """Run ``stream_recovery`` on the failure queue, if the app has it (today's does not)."""
        return self.recover() if self.has_recovery else None

    def recover(self) -> SqsReport:
        """Lambda's SQS trigger of ``stream_recovery`` on the stream failure queue."""
        assert STREAM_RECOVERY in self.app.handler_map, (
            "app.py has no stream_recovery handler: nothing consumes the stream failure "
            "queue, so orders whose stream records were discarded are never re-aggregated "
            "(issue 9)"
        )
        source = SqsEventSource(
            self.aws.sqs, self.failure_queue_url, self.handler(STREAM_RECOVERY), batch_size=10
        )
        return source.drain()

    def failure_messages(self) -> int:
        attributes = self.aws.sqs.get_queue_attributes(
            QueueUrl=self.failure_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def sweep(self) -> Any:
        """One run of the ``timeout_sweep`` schedule, with EventBridge's scheduled event."""
        event = {
            "version": "0",
            "id": "scheduled",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": self.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/timeout_sweep"],
            "detail": {},
        }
        return self.handler("timeout_sweep")(event)

    # --- what users see -------------------------------------------------------------

    def get(self, order_id: str) -> Any:
        return self.client.http.get(f"/orders/{order_id}")

    def status(self, order_id: str) -> str:
        """The order's GET status once an outcome is recorded (``decidedAt``); before
        that ``"<status> (undecided)"``: GET shows ``rejected`` as soon as a check failed,
        but only a recorded outcome is a decision."""
        response = self.get(order_id)
        if response.status_code != 200:
            return f"error {response.status_code}"
        body = response.json_body
        status = str(body.get("status"))
        return status if "decidedAt" in body else f"{status} (undecided)"

    def statuses(self, order_ids: list[str]) -> dict[str, str]:
        return {order_id: self.status(order_id) for order_id in order_ids}

    def dead_letters(self) -> dict[str, dict[str, Any]]:
        """The app's dead-letter records (CONTRACT: sparse index partition
        ``dead-letters``, then the ``#dead-letter`` item of each order)."""
        page = self.aws.dynamodb.query(
            TableName=TABLE,
            IndexName=table.PENDING_INDEX,
            KeyConditionExpression="#shard = :shard",
            ExpressionAttributeNames={"#shard": table.PENDING_SHARD},
            ExpressionAttributeValues={":shard": {"S": "dead-letters"}},
        )
        found: dict[str, dict[str, Any]] = {}
        for key in page.get("Items", []):
            if key.get(table.SORT_KEY, {}).get("S") != "#dead-letter":
                continue
            order_id = key[table.PARTITION_KEY]["S"]
            item = self.aws.dynamodb.get_item(
                TableName=TABLE,
                Key={table.PARTITION_KEY: {"S": order_id}, table.SORT_KEY: {"S": "#dead-letter"}},
                ConsistentRead=True,
            ).get("Item", {})
            found[order_id] = {k: next(iter(v.values())) for k, v in item.items()}
        return found


THROTTLED = "ProvisionedThroughputExceededException"


def _throttle_app_queries(monkeypatch: pytest.MonkeyPatch, orders: set[str]) -> None:
    """The app's DynamoDB ``Query`` of an order in ``orders`` fails as DynamoDB throttles
    it once the SDK's retries are spent (a transient fault)."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    from chalicelib import aws as app_aws

    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def call(client: BaseClient, operation: str, params: Any) -> Any:
        values = params.get("ExpressionAttributeValues") or {}
        order = (values.get(":pk") or {}).get("S")
        if operation == "Query" and order in orders and client is app_aws.dynamodb():
            error: Any = {"Error": {"Code": THROTTLED, "Message": "Rate of requests exceeds"}}
            raise ClientError(error, operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)


@pytest.fixture
def app_env() -> dict[str, str]:
    """Extra environment for ``app.py`` (a module may override this fixture)."""
    return {}


@pytest.fixture
def stack(
    load_app: Callable[..., Any],
    aws: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    app_env: dict[str, str],
) -> Iterator[Stack]:
    # No real waiting in the SDK's own retries (moto answers at once).
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )
    moment = Clock(START)
    monkeypatch.setattr(clock, "now", moment)
    app = load_app(**app_env)
    scheduler = LockstepScheduler(seed=11).install(monkeypatch)
    bus = PutEventsBus(ACCOUNT, REGION).install(monkeypatch)
    queue_url = aws.sqs.create_queue(QueueName=failure_queue_name())["QueueUrl"]
    with Client(app, stage_name="local") as client, order_sent_log() as sent:
        built = Stack(app, client, aws, moment, bus, scheduler, sent, queue_url)
        _throttle_app_queries(monkeypatch, built.throttled)
        yield built
