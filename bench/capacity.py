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
    stream_rate = NEW_TABLE_SHARDS * 1 * consumer.orders_per_slot
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
            "Aggregator on the stream (default ParallelizationFactor 1)",
            f"{NEW_TABLE_SHARDS} shards (new on-demand table) x 1 batch at a time",
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
    slots = math.ceil(target / big.orders_per_slot)
    changes = [
        (
            f"Aggregator: memory 1,024 MB (a {big.batch_records:.0f}-record batch then takes "
            f"{big.batch_ms:.0f} ms instead of {consumer.batch_ms:.0f} ms, "
            f"{big.orders_per_slot:.0f} orders/s per batch slot), ParallelizationFactor "
            f"{MAX_PARALLELIZATION}, and at least {math.ceil(slots / MAX_PARALLELIZATION)} stream "
            f"shards ({slots} batch slots): pre-warm the table (WarmThroughput) to "
            f"~{math.ceil(slots / MAX_PARALLELIZATION) * PARTITION_WCU:,} WRU/s so it has that "
            "many partitions."
        ),
        (
            f"PENDING_SHARDS >= {math.ceil(target * index_wru / PARTITION_WCU * 2)} "
            "(2x headroom over the index writes)."
        ),
        (
            f"Lambda concurrency quota >= {math.ceil(target * seconds_per_order * 1.5):,} "
            "(1.5x headroom, at 128 MB everywhere)."
        ),
        f"API Gateway throttle >= {math.ceil(target * api):,} requests/s.",
        (
            f"DynamoDB table maximum >= {math.ceil(target * wru):,} WRU/s "
            f"and {math.ceil(target * rru):,} RRU/s."
        ),
        (
            f"EventBridge: PutEvents >= {math.ceil(target * put_calls):,}/s, "
            f"target invocations >= {math.ceil(target * targets):,}/s."
        ),
    ]
    return CapacityPlan(
        limits=sorted(limits, key=lambda limit: limit.orders_per_second),
        binding=binding,
        target=target,
        consumers=[consumer, big],
        shards=NEW_TABLE_SHARDS,
        parallelization=1,
        pending_shards=pending_shards,
        changes=changes,
        source_orders=run.table_orders,
    )
