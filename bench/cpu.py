"""CPU cost of the handlers' own work, AWS answered in memory.

The app's Lambda entry points (``app.handler_map[...]`` and ``app(event, context)``, so
Chalice's own wrapping is included) run against fake clients that return canned
``Query``/``UpdateItem``/``PutItem``/``PutEvents`` responses at once; what is timed is
decoding stream images, grouping, reading the canned items, building and serializing
events, logging and metrics (written to a counting sink). CPU time of this process
(``time.process_time``), median of many repetitions.

Aggregator batches are 100 Lambda-shaped stream records spread over 1, 10, 50 (and 100)
orders; the canned order alternates between "order record with a deadline" and "no order
record yet" (then the aggregator also opens the order). The reference handler gets the
same batches; its fake Scan filters an in-memory table of N orders (the time the filter
takes is DynamoDB's work in AWS, so the "scan answered instantly" row is its own work).
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from unittest import mock

import boto3
from botocore.awsrequest import AWSResponse

from bench import sizing, workload
from bench.baseline import ReferenceAggregator
from bench.env import ACCOUNT, REGION, ROOT
from bench.quiet import quiet
from chalicelib import aggregator as aggregator_module
from chalicelib import aws as app_aws
from chalicelib import services, table
from chalicelib import store as store_module
from chalicelib.config import get_settings
from chalicelib.domain import format_time
from chalicelib.observability import logger as app_logger
from chalicelib.store import result_item, shard_name

BATCH_RECORDS = 100
ORDER_SPREADS = (1, 10, 50, 100)
REFERENCE_TABLE_ORDERS = (0, 1_000, 10_000)
CREATED = 1_735_689_600


# --- fakes ----------------------------------------------------------------------------


class FakeDynamoDB:
    """Answers at once: Query from canned items per order, writes with ``{}``."""

    def __init__(
        self,
        orders: Mapping[str, list[dict[str, Any]]],
        table_items: Sequence[dict[str, Any]] = (),
    ) -> None:
        self._orders = orders
        self._table = list(table_items)

    def query(self, **request: Any) -> dict[str, Any]:
        values = request["ExpressionAttributeValues"]
        items = self._orders.get(next(iter(values.values()))["S"], [])
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    def update_item(self, **request: Any) -> dict[str, Any]:
        return {}

    def put_item(self, **request: Any) -> dict[str, Any]:
        return {}

    def scan(self, **request: Any) -> dict[str, Any]:
        wanted = next(iter(request["ExpressionAttributeValues"].values()))["S"]
        found = [i for i in self._table if i[table.PARTITION_KEY]["S"] == wanted]
        found += [i for i in self._orders.get(wanted, []) if i[table.SORT_KEY]["S"][0] != "#"]
        return {"Items": found, "Count": len(found), "ScannedCount": len(self._table)}


class FakeEvents:
    def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "0"} for _ in Entries]}


# --- inputs ---------------------------------------------------------------------------


def canned_order(number: int, order_id: str, checks: tuple[str, ...]) -> list[dict[str, Any]]:
    planned = workload.planned_order(order_id, number, checks)
    items = [workload.to_dynamodb(result_item(order_id, r)) for r in planned.results]
    if number % 2 == 0:
        opened = planned.results[0].occurred_at
        items.append(
            workload.to_dynamodb(
                {
                    table.PARTITION_KEY: order_id,
                    table.SORT_KEY: table.ORDER_RECORD,
                    table.DEADLINE: format_time(opened),
                    table.PENDING_SHARD: shard_name(number % 4),
                    table.FIRST_SEEN_AT: format_time(opened),
                }
            )
        )
    return items


def stream_batch(
    spread: int, checks: tuple[str, ...], records: int = BATCH_RECORDS
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A Lambda stream event of ``records`` records over ``spread`` orders, and the
    canned items of those orders."""
    arn = os.environ.get("EVENTS_STREAM_ARN", "")
    orders = {f"cpu-{n:06d}": canned_order(n, f"cpu-{n:06d}", checks) for n in range(spread)}
    ids = list(orders)
    batch: list[dict[str, Any]] = []
    for position in range(records):
        order_id = ids[position % spread]
        number = position % spread
        check = (position // spread) % len(checks)
        planned = workload.planned_order(order_id, number, checks)
        image = workload.to_dynamodb(result_item(order_id, planned.results[check]))
        batch.append(
            {
                "eventID": f"{position:032x}",
                "eventName": "INSERT" if position < spread * len(checks) else "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "eventSourceARN": arn,
                "dynamodb": {
                    "ApproximateCreationDateTime": CREATED + position,
                    "Keys": {k: image[k] for k in (table.PARTITION_KEY, table.SORT_KEY)},
                    "NewImage": image,
                    "SequenceNumber": f"{4900000000000000000000 + position}",
                    "SizeBytes": sizing.item_size(image),
                    "StreamViewType": table.STREAM_VIEW_TYPE,
                },
            }
        )
    return {"Records": batch}, orders


def api_event(order_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway (REST, proxy) event for ``POST /orders/{order_id}/events``."""
    headers = {"Content-Type": "application/json", "Host": "bench.example"}
    return {
        "resource": "/orders/{order_id}/events",
        "path": f"/orders/{order_id}/events",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"order_id": order_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/orders/{order_id}/events",
            "httpMethod": "POST",
            "path": f"/api/orders/{order_id}/events",
            "stage": "api",
            "requestId": "bench",
            "accountId": ACCOUNT,
            "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def bus_event(detail: Mapping[str, Any]) -> dict[str, Any]:
    settings = get_settings()
    return {
        "version": "0",
        "id": "bench",
        "detail-type": settings.detail_type,
        "source": settings.event_source,
        "account": ACCOUNT,
        "time": "2025-01-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": dict(detail),
    }


# --- timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """CPU seconds per call: median and spread over ``runs`` repetitions."""

    median: float
    p10: float
    p90: float
    runs: int


def measure(call: Callable[[], object], min_seconds: float = 1.5, min_runs: int = 25) -> Timing:
    for _ in range(3):
        call()
    samples: list[float] = []
    started = time.process_time()
    while len(samples) < min_runs or time.process_time() - started < min_seconds:
        begin = time.process_time()
        call()
        samples.append(time.process_time() - begin)
    samples.sort()
    decile = max(1, len(samples) // 10)
    return Timing(statistics.median(samples), samples[decile - 1], samples[-decile], len(samples))


@contextmanager
def fake_aws(dynamodb: FakeDynamoDB, events: FakeEvents) -> Iterator[None]:
    """The app's clients replaced by fakes (and the cached services rebuilt on them)."""
    with (
        mock.patch.object(app_aws, "dynamodb", lambda: dynamodb),
        mock.patch.object(app_aws, "events", lambda: events),
    ):
        services.reset()
        try:
            yield
        finally:
            services.reset()


# --- the SDK's own work per call ---------------------------------------------------


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        data = self.read()
        if data:
            yield data


def _answer(body: Mapping[str, Any]) -> Callable[..., Any]:
    payload = json.dumps(body).encode()
    headers: Any = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "bench"}

    def send(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, headers, _Body(payload))

    return send


def sdk_calls(checks: tuple[str, ...], min_seconds: float = 0.75) -> dict[str, Timing]:
    """CPU of one boto3 call (build, validate, serialize, SigV4-sign, parse), with the
    HTTP exchange answered in memory: what every AWS call costs the function besides
    the network round trip."""
    session = boto3.session.Session(region_name=REGION)
    dynamodb: Any = session.client("dynamodb")
    events: Any = session.client("events")
    items = canned_order(0, "cpu-000000", checks)
    entry = {
        "Source": "event-aggregator",
        "DetailType": "Order Checks Aggregated",
        "Detail": json.dumps({"OrderID": "cpu-000000", "status": "approved"}),
        "EventBusName": "default",
        "Resources": [],
    }
    answers = {
        "Query": {"Items": items, "Count": len(items), "ScannedCount": len(items)},
        "UpdateItem": {},
        "PutItem": {},
        "Scan": {"Items": [], "Count": 0, "ScannedCount": 7000, "LastEvaluatedKey": items[0]},
    }
    for operation, body in answers.items():
        dynamodb.meta.events.register(f"before-send.dynamodb.{operation}", _answer(body))
    published = {"FailedEntryCount": 0, "Entries": [{"EventId": "0"}] * 10}
    events.meta.events.register("before-send.events.PutEvents", _answer(published))
    key = {table.PARTITION_KEY: {"S": "cpu-000000"}, table.SORT_KEY: {"S": table.ORDER_RECORD}}
    calls: dict[str, Callable[[], object]] = {
        "dynamodb.Query": lambda: dynamodb.query(
            TableName="t",
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": table.PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": "cpu-000000"}},
            ConsistentRead=True,
        ),
        "dynamodb.UpdateItem": lambda: dynamodb.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="SET #d = if_not_exists(#d, :d)",
            ConditionExpression="attribute_not_exists(#o)",
            ExpressionAttributeNames={"#d": table.DEADLINE, "#o": table.OUTCOME},
            ExpressionAttributeValues={":d": {"S": "2025-01-01T00:00:00.000000Z"}},
        ),
        "dynamodb.PutItem": lambda: dynamodb.put_item(
            TableName="t", Item=items[0], ReturnValues="ALL_OLD"
        ),
        "dynamodb.Scan": lambda: dynamodb.scan(
            TableName="t",
            FilterExpression="#o = :o",
            ExpressionAttributeNames={"#o": table.PARTITION_KEY},
            ExpressionAttributeValues={":o": {"S": "cpu-000000"}},
        ),
        "events.PutEvents": lambda: events.put_events(Entries=[entry] * 10),
    }
    return {name: measure(call, min_seconds) for name, call in calls.items()}


# --- what-ifs: candidate changes, tried by patching this process only -----------------

PUBLISHED_LINE = "aggregated event published"


class _DroppingLogger:
    """The app's logger minus one message (as if that ``logger.info`` line were gone)."""

    def __init__(self, logger: Any, message: str) -> None:
        self._logger = logger
        self._message = message

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        if message != self._message:
            self._logger.info(message, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


def _strings_first(image: Mapping[str, Any]) -> dict[str, Any]:
    """``store.to_python`` with a fast path for string attributes (all this table has)."""
    return {
        key: value["S"] if "S" in value else store_module._deserializer.deserialize(value)
        for key, value in image.items()
    }


def _variants() -> dict[str, list[Callable[[], Any]]]:
    drop = _DroppingLogger(app_logger, PUBLISHED_LINE)
    quiet_publish = partial(mock.patch.object, aggregator_module, "logger", drop)
    fast_items = partial(mock.patch.object, store_module, "to_python", _strings_first)
    return {
        "as is": [],
        f"without the per-order '{PUBLISHED_LINE}' log line": [quiet_publish],
        "string fast path in store.to_python": [fast_items],
        "both": [quiet_publish, fast_items],
    }


def what_ifs(
    app: Any, checks: tuple[str, ...], spreads: Sequence[int], min_seconds: float
) -> dict[str, dict[int, Timing]]:
    """The aggregator with candidate changes patched in (chalicelib's files untouched)."""
    aggregator = app.handler_map["aggregator"]
    results: dict[str, dict[int, Timing]] = {}
    for label, patches in _variants().items():
        results[label] = {}
        for spread in spreads:
            event, orders = stream_batch(spread, checks)
            with fake_aws(FakeDynamoDB(orders), FakeEvents()), contextlib.ExitStack() as stack:
                for patch in patches:
                    stack.enter_context(patch())
                results[label][spread] = measure(partial(aggregator, event, None), min_seconds)
    return results


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True)
class HotSpot:
    where: str
    function: str
    calls: int
    own_share: float
    total_share: float


@dataclass
class CpuResults:
    aggregator: dict[int, Timing]
    reference: dict[tuple[int, int], Timing]
    api_post: Timing
    invoice: Timing
    sdk: dict[str, Timing]
    profile_spread: int
    hot_spots: list[HotSpot]
    chalicelib_spots: list[HotSpot]
    areas: list[tuple[str, float]]
    profile_seconds: float
    what_ifs: dict[str, dict[int, Timing]]
    seconds: float


def _where(filename: str, line: int) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", str(ROOT).replace("\\", "/") + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        if "/lib/python" in path:
            path = "stdlib/" + path.rsplit("/lib/python", 1)[1].split("/", 1)[1]
    return f"{path}:{line}" if line else path


def _area(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/chalicelib/" in path:
        return "chalicelib." + path.rsplit("/chalicelib/", 1)[1].removesuffix(".py")
    for package, name in (
        ("aws_lambda_powertools", "aws_lambda_powertools (logs, metrics)"),
        ("boto3/dynamodb", "boto3 TypeDeserializer/TypeSerializer"),
        ("/chalice/", "chalice (event wrapping)"),
        ("/logging/", "stdlib logging"),
        ("/json/", "stdlib json"),
        ("/decimal", "stdlib decimal"),
    ):
        if package in path:
            return name
    if path.startswith("~") or path == "":
        return "builtins (json encode, strftime, fromisoformat …)"
    return "other stdlib/site-packages"


StatsEntry = tuple[int, int, float, float, Any]


def analyse(
    profile: cProfile.Profile, limit: int = 15
) -> tuple[list[HotSpot], list[HotSpot], list[tuple[str, float]]]:
    stats = pstats.Stats(profile)
    entries = cast(dict[tuple[str, int, str], StatsEntry], stats.stats)  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in entries.values()) or 1.0
    spots = [
        HotSpot(_where(f, line), name, nc, tt / total, ct / total)
        for (f, line, name), (_, nc, tt, ct, _) in entries.items()
    ]
    by_own = sorted(spots, key=lambda s: s.own_share, reverse=True)[:limit]
    mine = [
        s
        for s in sorted(spots, key=lambda s: s.total_share, reverse=True)
        if s.where.startswith("chalicelib/")
    ][:limit]
    areas: dict[str, float] = {}
    for (f, _, _), (_, _, tt, _, _) in entries.items():
        areas[_area(f)] = areas.get(_area(f), 0.0) + tt / total
    return by_own, mine, sorted(areas.items(), key=lambda a: a[1], reverse=True)


def run(
    app: Any, progress: Callable[[str], None] = lambda _: None, min_seconds: float = 1.5
) -> CpuResults:
    started = time.perf_counter()
    settings = get_settings()
    checks = settings.required_checks
    aggregator = app.handler_map["aggregator"]
    timings: dict[int, Timing] = {}
    reference: dict[tuple[int, int], Timing] = {}
    events = FakeEvents()
    with quiet():
        for spread in ORDER_SPREADS:
            progress(f"cpu: aggregator, 100 records over {spread} order(s)")
            event, orders = stream_batch(spread, checks)
            with fake_aws(FakeDynamoDB(orders), events):
                timings[spread] = measure(partial(aggregator, event, None), min_seconds)
        for size in REFERENCE_TABLE_ORDERS:
            items = list(workload.prefill_items(size, checks, with_order_record=False))
            for records in (BATCH_RECORDS, 1):
                progress(f"cpu: reference, {records} record(s), table of {size:,} orders")
                event, orders = stream_batch(min(50, records), checks, records)
                handler = ReferenceAggregator(
                    FakeDynamoDB(orders, items), events, "reference", settings
                )
                reference[(size, records)] = measure(partial(handler.handle, event), min_seconds)
            del items
            gc.collect()
        progress("cpu: API POST and invoice handler")
        post = api_event("cpu-000001", {"name": checks[0], "status": "passed"})
        with fake_aws(FakeDynamoDB({}), events):
            api_post = measure(lambda: app(post, None), min_seconds)
        order_id = "cpu-000000"
        approved = {"OrderID": order_id, "status": "approved"} | {c: "passed" for c in checks}
        canned = {order_id: canned_order(0, order_id, checks)}
        invoice_handler = app.handler_map["invoice_processing"]
        with fake_aws(FakeDynamoDB(canned), events):
            invoice = measure(lambda: invoice_handler(bus_event(approved), None), min_seconds)
        progress("cpu: boto3's own work per call")
        sdk = sdk_calls(checks, min_seconds / 2)
        profile_spread = 50
        progress(f"cpu: profiling the aggregator (100 records over {profile_spread} orders)")
        event, orders = stream_batch(profile_spread, checks)
        with fake_aws(FakeDynamoDB(orders), events):
            profile = cProfile.Profile()
            begin = time.process_time()
            profile.enable()
            for _ in range(200):
                aggregator(event, None)
            profile.disable()
            profile_seconds = time.process_time() - begin
        progress("cpu: what-ifs (candidate changes patched in this process)")
        candidates = what_ifs(app, checks, (50, 100), min_seconds)
    hot, mine, areas = analyse(profile)
    return CpuResults(
        aggregator=timings,
        reference=reference,
        api_post=api_post,
        invoice=invoice,
        sdk=sdk,
        profile_spread=profile_spread,
        hot_spots=hot,
        chalicelib_spots=mine,
        areas=areas,
        profile_seconds=profile_seconds,
        what_ifs=candidates,
        seconds=time.perf_counter() - started,
    )
