"""AWS request cost per order, counted on moto, for this project and the reference design.

For each table size (orders already in the table, finished) both designs process the same
new orders, in two waves: every order's first check, then every order's second check
(each order's checks arrive in different stream batches: the realistic, dearer case for
this project, one Query and one event per order per wave).

* This project: ``POST /orders/{id}/events`` through the Chalice test client, the table's
  stream into the aggregator as Lambda delivers it (batches of up to 100 records, after
  the event source mapping's filter), the aggregated events through EventBridge (moto) to
  the invoice and problem handlers, until the pipeline is idle.
* The reference design: the same items written by the same store call (same ingest cost),
  its stream into :class:`bench.baseline.ReferenceAggregator` with a batch size of 1 (the
  only setting at which it sees every record), its events matched against its rule
  (every check present); the target is counted as an invocation doing no AWS call. The
  reference's own default batch size (100) runs alongside for the orders it loses.

Everything is counted by :class:`bench.meter.Meter`. At sizes too big for moto the
figures are derived (:func:`derive_reference`, :func:`derive_project`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import boto3
from moto import mock_aws

from bench import sizing, workload
from bench.baseline import ReferenceAggregator
from bench.emulator import faster_moto
from bench.env import ACCOUNT, REFERENCE_TABLE, REGION, ROOT
from bench.meter import FunctionUsage, Meter, TableLedger
from bench.quiet import SINK, quiet
from chalicelib import aws as app_aws
from chalicelib import clock as app_clock
from chalicelib import services, table
from chalicelib.config import Settings, get_settings
from chalicelib.domain import CheckResult, format_time
from chalicelib.rules import all_checks_present_pattern, stream_filter_pattern
from chalicelib.store import EventStore
from local.eventbridge import matches
from local.pipeline import AwsClients, Pipeline, resolve_stream_arn
from local.streams import FailureQueue, StreamMapping, StreamReader

PROJECT_FUNCTIONS = (
    "api_handler",
    "aggregator",
    "invoice_processing",
    "problem_handler",
    "timeout_sweep",
)
REFERENCE_FUNCTIONS = ("api_handler", "reference_aggregator", "reference_target")
STAGE = "local"
JSON = {"Content-Type": "application/json"}


def stream_filter() -> tuple[dict[str, Any], str]:
    """The aggregator's event-source filter, as the deployment template sets it."""
    return stream_filter_pattern(), "chalicelib.rules.stream_filter_pattern()"


@dataclass
class Run:
    """One design, one table size: what was counted."""

    design: str
    table_orders: int
    new_orders: int
    usage: dict[str, FunctionUsage]
    prefill_sizes: list[int]
    new_item_sizes: list[list[int]]
    table_items: int
    table_bytes: int
    stream_records: int
    completed: int
    filtered_out: int = 0
    max_queries_per_order_and_batch: int = 0
    put_events_batches: list[list[int]] = field(default_factory=list)
    scan_count_mismatches: int = 0
    log_bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def total(self) -> FunctionUsage:
        summed = FunctionUsage()
        for usage in self.usage.values():
            summed.add(usage)
        return summed


@dataclass
class SizeResult:
    table_orders: int
    project: Run
    reference: Run
    reference_as_shipped: Run


@dataclass
class CostResults:
    new_orders: int
    sizes: list[SizeResult]
    filter_source: str
    derived_sizes: list[int]
    seconds: float


# --- moto tables ----------------------------------------------------------------------


def reference_table_request(name: str) -> dict[str, Any]:
    """The reference design's table: same keys, no index, stream on."""
    request = table.create_table_request(name)
    request.pop("GlobalSecondaryIndexes")
    request["AttributeDefinitions"] = [
        d
        for d in request["AttributeDefinitions"]
        if d["AttributeName"] in (table.PARTITION_KEY, table.SORT_KEY)
    ]
    return request


def _prepared_table(
    client: Any, request: dict[str, Any], items: Iterator[dict[str, Any]]
) -> tuple[TableLedger, list[int]]:
    """Create the table, pre-fill it, then turn its stream on (pre-fill is not streamed)."""
    without_stream = {k: v for k, v in request.items() if k != "StreamSpecification"}
    client.create_table(**without_stream)
    written = workload.fill(client, request["TableName"], items)
    client.update_table(
        TableName=request["TableName"], StreamSpecification=request["StreamSpecification"]
    )
    ledger = TableLedger.from_create_request(request)
    ledger.load(written)
    return ledger, [sizing.item_size(item) for item in written]


class FilteredStreamReader(StreamReader):
    """A stream reader that drops what the event source mapping's filter drops.

    It keeps reading until it has a record that passes or the shard has nothing new, as
    Lambda filters before batching. (``local.streams.StreamMapping``'s own ``filters``
    stop at a read whose records all fail the filter, which ends ``run_until_idle``
    early when the app's own order-record writes fill a whole read.)
    """

    def __init__(
        self, client: Any, stream_arn: str, region: str, pattern: Mapping[str, Any]
    ) -> None:
        super().__init__(client, stream_arn, region)
        self._pattern = dict(pattern)
        self.passed = 0
        self.dropped = 0

    def read(self, limit: int) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        while len(kept) < limit:
            fresh = super().read(limit - len(kept))
            if not fresh:
                break
            for record in fresh:
                if matches(self._pattern, record):
                    kept.append(record)
                else:
                    self.dropped += 1
        self.passed += len(kept)
        return kept


@contextlib.contextmanager
def metered_handlers(app: Any, meter: Meter) -> Iterator[None]:
    """Count every invocation of the app's event handlers while the block runs."""
    original = dict(app.handler_map)
    for name, handler in original.items():
        app.handler_map[name] = meter.wrap(name, handler)
    try:
        yield
    finally:
        app.handler_map.clear()
        app.handler_map.update(original)


def _filtered_mappings(
    app: Any, clients: AwsClients, failures: FailureQueue, pattern: Mapping[str, Any]
) -> tuple[list[StreamMapping], list[FilteredStreamReader]]:
    """The app's stream mappings, as the pipeline builds them, reading through the filter."""
    from chalice.app import DynamoDBEventConfig

    mappings: list[StreamMapping] = []
    readers: list[FilteredStreamReader] = []
    for source in app.event_sources:
        if isinstance(source, DynamoDBEventConfig):
            arn = resolve_stream_arn(clients.dynamodb, source.stream_arn)
            reader = FilteredStreamReader(clients.streams, arn, REGION, pattern)
            readers.append(reader)
            mappings.append(
                StreamMapping.for_handler(
                    source.name,
                    app.handler_map[source.name],
                    reader,
                    source.batch_size,
                    failures,
                    source.maximum_batching_window_in_seconds,
                )
            )
    return mappings, readers


def _body(result: CheckResult) -> str:
    body: dict[str, Any] = {
        "name": result.name,
        "status": result.status,
        "occurredAt": format_time(result.occurred_at),
    }
    if result.reason:
        body["reason"] = result.reason
    return json.dumps(body)


# --- this project ---------------------------------------------------------------------


def run_project(
    app: Any, size: int, orders: Sequence[workload.PlannedOrder], pattern: Mapping[str, Any]
) -> Run:
    from chalice.test import Client

    settings = get_settings()
    checks = settings.required_checks
    started = time.perf_counter()
    logged = SINK.bytes
    with mock_aws(), quiet():
        session = boto3.session.Session(region_name=REGION)
        raw = session.client("dynamodb")
        request = table.create_table_request(settings.table_name)
        ledger, prefill_sizes = _prepared_table(
            raw, request, workload.prefill_items(size, checks, with_order_record=True)
        )
        services.reset()
        meter = Meter(raw, {settings.table_name: ledger})
        meter.attach(app_aws.dynamodb())
        meter.attach(app_aws.events())
        services.store()
        services.publisher()
        clients = AwsClients.from_session(session)
        new_sizes: list[list[int]] = []
        refused = 0
        with metered_handlers(app, meter):
            pipeline = Pipeline(app, clients, ACCOUNT, REGION)
            pipeline.mappings, readers = _filtered_mappings(
                app, clients, pipeline.failures, pattern
            )
            with Client(app, stage_name=STAGE, project_dir=str(ROOT)) as client:
                for wave in range(len(checks)):
                    before = ledger.sizes
                    for order in orders:
                        path = f"/orders/{order.order_id}/events"
                        body = _body(order.results[wave])
                        response = meter.invoke(
                            "api_handler", partial(client.http.post, path, headers=JSON, body=body)
                        )
                        refused += response.status_code != 201
                    new_sizes.append(_added(before, ledger.sizes))
                    pipeline.run_until_idle()
                _sweep_after_deadlines(pipeline, settings)
        store = EventStore(raw, settings.table_name)
        completed = 0
        for order in orders:
            found = store.load_order(order.order_id)
            expected = "invoiced" if order.approved else "rejected"
            completed += (
                found is not None and found.outcome is not None and (found.outcome.kind == expected)
            )
        notes = [f"{refused} POST(s) refused"] if refused else []
        if pipeline.failures.entries:
            notes.append(f"{len(pipeline.failures.entries)} record(s) in the failure queue")
        run = Run(
            design="project",
            table_orders=size,
            new_orders=len(orders),
            usage={name: meter.usage[name] for name in PROJECT_FUNCTIONS},
            prefill_sizes=prefill_sizes,
            new_item_sizes=new_sizes,
            table_items=len(ledger),
            table_bytes=ledger.total_bytes,
            stream_records=sum(r.passed for r in readers),
            filtered_out=sum(r.dropped for r in readers),
            completed=completed,
            max_queries_per_order_and_batch=meter.max_queries_per_order_and_batch,
            put_events_batches=list(meter.put_events_per_invocation.values()),
            scan_count_mismatches=meter.scan_count_mismatches,
            log_bytes=SINK.bytes - logged,
            seconds=time.perf_counter() - started,
            notes=notes,
        )
    services.reset()
    return run


def _sweep_after_deadlines(pipeline: Pipeline, settings: Settings) -> None:
    """The timeout sweep as its schedule runs it once every order's deadline passed (a
    minute after it): it reads the due deadline buckets, drops the orders that are done
    and deletes the buckets, so their cost is counted per order like the rest."""
    real_now = app_clock.now
    late = timedelta(seconds=settings.order_timeout_seconds + 60)
    app_clock.now = lambda: real_now() + late
    try:
        pipeline.run_schedules()
        pipeline.run_until_idle()
    finally:
        app_clock.now = real_now


def _added(before: list[int], after: list[int]) -> list[int]:
    """Sizes of the items written between two snapshots (a wave only adds items)."""
    return sorted((Counter(after) - Counter(before)).elements())


# --- the reference design -------------------------------------------------------------


def _envelope(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "bench",
        "detail-type": entry.get("DetailType", ""),
        "source": entry.get("Source", ""),
        "account": ACCOUNT,
        "time": "",
        "region": REGION,
        "resources": list(entry.get("Resources") or []),
        "detail": json.loads(entry.get("Detail") or "{}"),
    }


def _consumer(
    session: Any, meter: Meter, settings: Settings, stream_arn: str, batch_size: int
) -> StreamMapping:
    dynamodb = session.client("dynamodb")
    events = session.client("events")
    meter.attach(dynamodb)
    meter.attach(events)
    aggregator = ReferenceAggregator(dynamodb, events, REFERENCE_TABLE, settings)
    reader = StreamReader(session.client("dynamodbstreams"), stream_arn, REGION)

    def handler(event: dict[str, Any], context: Any) -> None:
        aggregator.handle(event, context)

    return StreamMapping.for_handler(
        "reference_aggregator",
        meter.wrap("reference_aggregator", handler),
        reader,
        batch_size,
        FailureQueue(),
    )


def _drain(mapping: StreamMapping) -> None:
    while mapping.step():
        pass


def _route(meter: Meter, settings: Settings, start: int) -> set[str]:
    """Run the reference target for every new event its rule matches; orders matched."""
    pattern = all_checks_present_pattern(settings)
    matched: set[str] = set()
    for entry in meter.published[start:]:
        event = _envelope(entry)
        if matches(pattern, event):
            meter.invoke("reference_target", lambda: None)
            matched.add(str(event["detail"].get("OrderID")))
    return matched


def run_reference(size: int, orders: Sequence[workload.PlannedOrder]) -> tuple[Run, Run]:
    """The reference design at batch size 1, and (same stream) at batch size 100."""
    settings = get_settings()
    checks = settings.required_checks
    started = time.perf_counter()
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        raw = session.client("dynamodb")
        request = reference_table_request(REFERENCE_TABLE)
        ledger, prefill_sizes = _prepared_table(
            raw, request, workload.prefill_items(size, checks, with_order_record=False)
        )
        stream_arn = raw.describe_table(TableName=REFERENCE_TABLE)["Table"]["LatestStreamArn"]
        meter = Meter(raw, {REFERENCE_TABLE: ledger})
        shipped = Meter(raw, {REFERENCE_TABLE: ledger})
        ingest_client = session.client("dynamodb")
        meter.attach(ingest_client)
        ingest = EventStore(ingest_client, REFERENCE_TABLE)
        per_record = _consumer(session, meter, settings, stream_arn, batch_size=1)
        per_batch = _consumer(session, shipped, settings, stream_arn, batch_size=100)
        matched: set[str] = set()
        matched_shipped: set[str] = set()
        new_sizes: list[list[int]] = []
        for wave in range(len(checks)):
            before = ledger.sizes
            for order in orders:
                result = order.results[wave]
                meter.invoke(
                    "api_handler", partial(ingest.record_result, order.order_id, result, True)
                )
            new_sizes.append(_added(before, ledger.sizes))
            published, published_shipped = len(meter.published), len(shipped.published)
            _drain(per_record)
            matched |= _route(meter, settings, published)
            _drain(per_batch)
            matched_shipped |= _route(shipped, settings, published_shipped)
        seconds = time.perf_counter() - started

        def run(of: Meter, completed: int, design: str, records: int) -> Run:
            usage = {name: of.usage[name] for name in REFERENCE_FUNCTIONS}
            return Run(
                design=design,
                table_orders=size,
                new_orders=len(orders),
                usage=usage,
                prefill_sizes=prefill_sizes,
                new_item_sizes=new_sizes,
                table_items=len(ledger),
                table_bytes=ledger.total_bytes,
                stream_records=records,
                completed=completed,
                scan_count_mismatches=of.scan_count_mismatches,
                seconds=seconds,
            )

        records = meter.usage["reference_aggregator"].records_in
        reference = run(meter, len(matched), "reference", records)
        as_shipped = run(shipped, len(matched_shipped), "reference, batch 100", records)
        # The ingest is shared: charge it to the batch-1 run only.
        as_shipped.usage["api_handler"] = FunctionUsage()
    return reference, as_shipped


# --- derived figures ------------------------------------------------------------------


def reference_scan_units(
    prefill_sizes: Sequence[int],
    new_item_sizes: Sequence[Sequence[int]],
    records_per_wave: int,
    page_bytes: int = sizing.SCAN_PAGE_BYTES,
) -> tuple[int, float, int]:
    """Scan pages, read units and items read by the reference over all waves.

    Each record of a wave scans the whole table as it stands after that wave's writes
    (the harness writes a wave, then drains the stream).
    """
    sizes = list(prefill_sizes)
    pages = 0
    units = 0.0
    items = 0
    for wave in new_item_sizes:
        sizes.extend(wave)
        wave_pages = sizing.scan_pages(sizes, page_bytes)
        pages += records_per_wave * len(wave_pages)
        units += records_per_wave * sum(sizing.read_units(p, False) for p in wave_pages)
        items += records_per_wave * len(sizes)
    return pages, units, items


MOTO_SCAN_PAGE_BYTES = 1_000_000  # moto ends a Scan page at 1,000,000 bytes (AWS: 1 MiB)


def derive_reference(counted: Run, size: int, checks: tuple[str, ...]) -> Run:
    """The reference at ``size`` orders: counted per-order figures, Scan reads re-derived.

    Everything but the Scan does not depend on the table size and is taken as counted;
    the Scan's pages and units are computed by the same rule over a table of ``size``
    pre-filled orders (sizes from the same generator) plus the same new items.
    """
    prefill_sizes = [sizing.item_size(i) for i in workload.prefill_items(size, checks, False)]
    usage = {name: _copy(u) for name, u in counted.usage.items()}
    records_per_wave = counted.new_orders
    pages, units, items = reference_scan_units(
        prefill_sizes, counted.new_item_sizes, records_per_wave
    )
    aggregator = usage["reference_aggregator"]
    aggregator.read_units = units
    aggregator.scan_pages = pages
    aggregator.scanned_items = items
    aggregator.calls["dynamodb.Scan"] = pages
    return Run(
        design="reference (derived)",
        table_orders=size,
        new_orders=counted.new_orders,
        usage=usage,
        prefill_sizes=prefill_sizes,
        new_item_sizes=counted.new_item_sizes,
        table_items=len(prefill_sizes) + sum(len(w) for w in counted.new_item_sizes),
        table_bytes=sum(prefill_sizes) + sum(sum(w) for w in counted.new_item_sizes),
        stream_records=counted.stream_records,
        completed=counted.completed,
        notes=["derived"],
    )


def derive_project(counted: Run, size: int) -> Run:
    """This project at ``size`` orders: per-order figures do not depend on the table size
    (one Query on the order's own partition; nothing reads other orders), so the counted
    figures carry over unchanged."""
    return Run(
        design="project (derived)",
        table_orders=size,
        new_orders=counted.new_orders,
        usage={name: _copy(u) for name, u in counted.usage.items()},
        prefill_sizes=[],
        new_item_sizes=counted.new_item_sizes,
        table_items=0,
        table_bytes=0,
        stream_records=counted.stream_records,
        completed=counted.completed,
        filtered_out=counted.filtered_out,
        max_queries_per_order_and_batch=counted.max_queries_per_order_and_batch,
        put_events_batches=counted.put_events_batches,
        log_bytes=counted.log_bytes,
        notes=["derived"],
    )


def _copy(usage: FunctionUsage) -> FunctionUsage:
    copy = FunctionUsage()
    copy.add(usage)
    return copy


def validate_derivation(counted: Run) -> tuple[float, float]:
    """Counted Scan read units vs. the derivation's rule at moto's page size."""
    _, units, _ = reference_scan_units(
        counted.prefill_sizes, counted.new_item_sizes, counted.new_orders, MOTO_SCAN_PAGE_BYTES
    )
    return counted.usage["reference_aggregator"].read_units, units


def run(
    app: Any,
    sizes: Sequence[int] = (1_000, 10_000),
    derived: Sequence[int] = (100_000,),
    new_orders: int = 100,
    progress: Callable[[str], None] = lambda _: None,
) -> CostResults:
    started = time.perf_counter()
    pattern, source = stream_filter()
    checks = get_settings().required_checks
    orders = workload.new_orders(new_orders, checks)
    results: list[SizeResult] = []
    with faster_moto():
        for size in sizes:
            progress(f"cost: this project, {size:,} orders in the table")
            project = run_project(app, size, orders, pattern)
            progress(f"cost: reference design, {size:,} orders in the table")
            reference, shipped = run_reference(size, orders)
            results.append(SizeResult(size, project, reference, shipped))
    return CostResults(
        new_orders=new_orders,
        sizes=results,
        filter_source=source,
        derived_sizes=list(derived),
        seconds=time.perf_counter() - started,
    )
