"""Capacity plan on paper: default AWS quotas against the counted per-order usage.

Every limit is turned into orders per second using what one order was counted to use
(:mod:`bench.cost`) and, where time matters (Lambda concurrency, the stream consumer),
the derived durations of :mod:`bench.money`. Quotas are AWS's published defaults for
us-east-1 (all adjustable unless noted); they are inputs, not measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cost import Run
from bench.cpu import CpuResults
from bench.money import Assumptions, duration_ms

API_GATEWAY_RPS = 10_000
LAMBDA_CONCURRENCY = 1_000
PUT_EVENTS_TPS = 10_000
EVENTBRIDGE_INVOCATIONS_PER_SECOND = 18_750
TABLE_MAX_WRU = 40_000
TABLE_MAX_RRU = 40_000
PARTITION_WCU = 1_000
PARTITION_RCU = 3_000
NEW_TABLE_WRU = 4_000
NEW_TABLE_SHARDS = 4
MAX_PARALLELIZATION = 10
TEN_TIMES = 10
# The timeout sweep, on paper. Latencies are assumptions (DynamoDB's single-digit
# milliseconds, taken pessimistically; a PutEvents call of 10 entries), not measurements.
SWEEP_QUERY_MS = 10.0
SWEEP_PUT_EVENTS_MS = 20.0
SWEEP_RUNS_PER_MINUTE = 1
# Share of orders that time out at the soak run's mix (10% miss a check).
TIMEOUT_SHARE = 0.10


@dataclass(frozen=True)
class Limit:
    name: str
    quota: str
    usage: str
    orders_per_second: float
    to_go_higher: str


@dataclass(frozen=True)
class StreamConsumer:
    memory_mb: int
    batch_records: float
    batch_ms: float
    orders_per_slot: float


@dataclass
class CapacityPlan:
    limits: list[Limit]
    binding: Limit
    target: float
    consumers: list[StreamConsumer]
    shards: int
    parallelization: int
    pending_shards: int
    changes: list[str]
    source_orders: int


def _consumer(run: Run, cpu: CpuResults, memory_mb: int) -> StreamConsumer:
    usage = run.usage["aggregator"]
    records_per_order = usage.records_in / run.new_orders
    batch = usage.records_in / usage.invocations
    ms = duration_ms("aggregator", usage, cpu, Assumptions(memory_mb=memory_mb))
    return StreamConsumer(memory_mb, batch, ms, batch / (ms / 1000) / records_per_order)


def _stream_change(target: float, small: StreamConsumer, big: StreamConsumer) -> str:
    """What the aggregator's event source mapping needs for ``target`` orders/s."""
    slots_small = math.ceil(target / small.orders_per_slot)
    slots_big = math.ceil(target / big.orders_per_slot)
    factor_small = math.ceil(slots_small / NEW_TABLE_SHARDS)
    factor_big = math.ceil(slots_big / NEW_TABLE_SHARDS)
    if factor_small <= MAX_PARALLELIZATION:
        return (
            f"Aggregator's event source mapping: ParallelizationFactor {factor_small} "
            f"({NEW_TABLE_SHARDS} shards x {factor_small} = {NEW_TABLE_SHARDS * factor_small} "
            f"batches at a time, {small.orders_per_slot:.0f} orders/s each at "
            f"{small.memory_mb} MB) — more concurrency, not more requests; or memory "
            f"{big.memory_mb:,} MB ({big.orders_per_slot:.0f} orders/s per batch) and "
            f"ParallelizationFactor {factor_big}."
        )
    shards = math.ceil(slots_big / MAX_PARALLELIZATION)
    return (
        f"Aggregator: memory {big.memory_mb:,} MB ({big.orders_per_slot:.0f} orders/s per "
        f"batch), ParallelizationFactor {MAX_PARALLELIZATION} and >= {shards} stream shards "
        f"({slots_big} batches at a time): pre-warm the table (WarmThroughput, "
        f"~{shards * PARTITION_WCU:,} WRU/s) so it has that many partitions."
    )


@dataclass(frozen=True)
class SweepCapacity:
    """How many timeouts one sweep run handles, and the order rate that produces them."""

    budget_seconds: int
    concurrency: int
    per_run: int
    timeouts_per_second: float
    orders_per_second: float


# What the sweep's model assumes of a bucket: a full stream batch (100 records) lists up
# to 100 orders, and each order is listed by the two batches of its two checks (the cost
# run's pattern), both at its one deadline, so one run reads it once.
ORDERS_PER_BUCKET = 100
LISTINGS_PER_ORDER = 2


def sweep_capacity(budget_seconds: int) -> SweepCapacity:
    """Per page of ``BUCKET_PAGE`` due buckets: the bucket Query; the order records of
    its orders (one BatchGetItem per 100, ``READ_CONCURRENCY`` in flight); a full Query
    of each order not done (the ``TIMEOUT_SHARE`` that time out; as many in flight);
    their PutEvents calls; one PutItem listing them again; the buckets' DeleteItems (in
    flight)."""
    from chalicelib.timeouts import BUCKET_PAGE, READ_CONCURRENCY

    orders = BUCKET_PAGE * ORDERS_PER_BUCKET // LISTINGS_PER_ORDER
    timeouts = orders * TIMEOUT_SHARE

    def rounds(calls: float) -> int:
        return math.ceil(calls / READ_CONCURRENCY)

    page_ms = (
        SWEEP_QUERY_MS  # the bucket page
        + rounds(math.ceil(orders / 100)) * SWEEP_QUERY_MS  # BatchGetItem
        + rounds(timeouts) * SWEEP_QUERY_MS  # full reads
        + rounds(math.ceil(timeouts / 10)) * SWEEP_PUT_EVENTS_MS
        + SWEEP_QUERY_MS  # the PutItem listing them again
        + rounds(BUCKET_PAGE) * SWEEP_QUERY_MS  # DeleteItems
    )
    orders_per_run = budget_seconds * 1000 / page_ms * orders
    per_second = orders_per_run * SWEEP_RUNS_PER_MINUTE / 60
    return SweepCapacity(
        budget_seconds,
        READ_CONCURRENCY,
        int(orders_per_run * TIMEOUT_SHARE),
        per_second * TIMEOUT_SHARE,
        per_second,
    )


def deployed_parallelization() -> int:
    """The aggregator trigger's ParallelizationFactor in the deployment template."""
    from scripts.render_template import STREAM_FAILURE_HANDLING

    return int(STREAM_FAILURE_HANDLING.get("ParallelizationFactor", 1))


def plan(run: Run, cpu: CpuResults, pending_shards: int, memory_mb: int = 128) -> CapacityPlan:
    orders = run.new_orders
    per = {name: u.invocations / orders for name, u in run.usage.items()}
    total = run.total()
    api = per["api_handler"]
    targets = per.get("invoice_processing", 0.0) + per.get("problem_handler", 0.0)
    put_calls = total.calls["events.PutEvents"] / orders
    wru = total.write_units / orders
    rru = total.read_units / orders
    index_wru = total.index_write_units / orders
    assumed = Assumptions(memory_mb=memory_mb)
    seconds_per_order = sum(
        u.invocations / orders * duration_ms(name, u, cpu, assumed) / 1000
        for name, u in run.usage.items()
    )
    consumer = _consumer(run, cpu, memory_mb)
    big = _consumer(run, cpu, 1024)
    factor = deployed_parallelization()
    stream_rate = NEW_TABLE_SHARDS * factor * consumer.orders_per_slot
    from chalicelib.config import get_settings

    sweep = sweep_capacity(get_settings().sweep_budget_seconds)
    limits = [
        Limit(
            "API Gateway REST, account throttle",
            f"{API_GATEWAY_RPS:,} requests/s per region",
            f"{api:.2f} requests/order",
            API_GATEWAY_RPS / api,
            "quota increase (adjustable)",
        ),
        Limit(
            "Lambda concurrency",
            f"{LAMBDA_CONCURRENCY:,} concurrent executions per region",
            f"{seconds_per_order * 1000:.0f} ms of execution/order (derived)",
            LAMBDA_CONCURRENCY / seconds_per_order,
            "quota increase; more memory for the aggregator shortens its batches",
        ),
        Limit(
            f"Aggregator on the stream (ParallelizationFactor {factor}, as deployed)",
            f"{NEW_TABLE_SHARDS} shards (new on-demand table) x {factor} batch(es) at a time",
            f"{consumer.batch_records:.0f}-record batch in {consumer.batch_ms:.0f} ms "
            f"(derived, {memory_mb} MB)",
            stream_rate,
            f"ParallelizationFactor {MAX_PARALLELIZATION}, more memory, more shards "
            "(pre-warmed table: WarmThroughput), concurrent Queries in the aggregator",
        ),
        Limit(
            "PendingByDeadline index: one partition-key value per shard",
            f"{pending_shards} values (PENDING_SHARDS) x {PARTITION_WCU:,} WCU/s",
            f"{index_wru:.2f} index write units/order (entry added, then removed)",
            pending_shards * PARTITION_WCU / index_wru if index_wru else math.inf,
            "raise PENDING_SHARDS (the sweep then makes one more Query per shard a minute)",
        ),
        Limit(
            "DynamoDB table, on-demand maximum",
            f"{TABLE_MAX_WRU:,} WRU/s, {TABLE_MAX_RRU:,} RRU/s per table",
            f"{wru:.2f} WRU, {rru:.2f} RRU/order",
            min(TABLE_MAX_WRU / wru, TABLE_MAX_RRU / rru),
            "quota increase; pre-warm (WarmThroughput) for a sudden start",
        ),
        Limit(
            "Timeout sweep (one run a minute)",
            f"{sweep.budget_seconds} s budget, {sweep.concurrency} reads in flight: "
            f"{sweep.per_run:,} timeouts per run ({SWEEP_QUERY_MS:.0f} ms per DynamoDB call, "
            f"{SWEEP_PUT_EVENTS_MS:.0f} ms per PutEvents call, assumed)",
            f"each order read once from its deadline bucket (BatchGetItem); "
            f"{TIMEOUT_SHARE:.0%} time out (the soak mix) and are read in full",
            sweep.orders_per_second,
            "SWEEP_BUDGET_SECONDS (up to the function's timeout), more reads in flight, "
            "or the schedule more often",
        ),
        Limit(
            "EventBridge PutEvents",
            f"{PUT_EVENTS_TPS:,} requests/s per region",
            f"{put_calls:.2f} calls/order",
            PUT_EVENTS_TPS / put_calls,
            "quota increase (adjustable)",
        ),
        Limit(
            "EventBridge target invocations",
            f"{EVENTBRIDGE_INVOCATIONS_PER_SECOND:,}/s per region",
            f"{targets:.2f} invocations/order",
            EVENTBRIDGE_INVOCATIONS_PER_SECOND / targets if targets else math.inf,
            "quota increase (adjustable)",
        ),
    ]
    binding = min(limits, key=lambda limit: limit.orders_per_second)
    target = binding.orders_per_second * TEN_TIMES
    needed: dict[str, str] = {
        limits[0].name: f"API Gateway throttle >= {math.ceil(target * api):,} requests/s",
        limits[1].name: (
            f"Lambda concurrency >= {math.ceil(target * seconds_per_order * 1.5):,} (1.5x headroom)"
        ),
        limits[3].name: (
            f"PENDING_SHARDS >= {math.ceil(target * index_wru / PARTITION_WCU * 1.5)} "
            "(1.5x headroom over the index writes)"
        ),
        limits[4].name: (
            f"table maximum >= {math.ceil(target * wru):,} WRU/s and "
            f"{math.ceil(target * rru):,} RRU/s"
        ),
        limits[5].name: (
            f"timeout sweep >= {math.ceil(target * TIMEOUT_SHARE * 60):,} timeouts a minute "
            "(SWEEP_BUDGET_SECONDS, reads in flight, or runs more often)"
        ),
        limits[6].name: f"PutEvents quota >= {math.ceil(target * put_calls):,}/s",
        limits[7].name: f"invocations quota >= {math.ceil(target * targets):,}/s",
    }
    changes = [_stream_change(target, consumer, big)]
    others = [limit for limit in limits if limit.name in needed]
    short = [limit for limit in others if limit.orders_per_second < target]
    changes += [
        f"{needed[limit.name]} ({limit.name}: {limit.orders_per_second:,.0f}/s now)."
        for limit in short
    ]
    enough = [limit for limit in others if limit.orders_per_second >= target]
    if enough:
        changes.append(
            "No change needed for: "
            + "; ".join(f"{limit.name} ({limit.orders_per_second:,.0f}/s)" for limit in enough)
            + "."
        )
    following = min(others, key=lambda limit: limit.orders_per_second)
    changes.append(
        f"Once the stream consumer is scaled, the next ceiling is {following.name} at "
        f"~{following.orders_per_second:,.0f} orders/s; then "
        + ", ".join(
            f"{limit.name} ~{limit.orders_per_second:,.0f}/s"
            for limit in sorted(others, key=lambda limit: limit.orders_per_second)[1:3]
        )
        + "."
    )
    return CapacityPlan(
        limits=sorted(limits, key=lambda limit: limit.orders_per_second),
        binding=binding,
        target=target,
        consumers=[consumer, big],
        shards=NEW_TABLE_SHARDS,
        parallelization=factor,
        pending_shards=pending_shards,
        changes=changes,
        source_orders=run.table_orders,
    )
