"""Prices and the Lambda duration model: counted units in, dollars per order out.

Prices are public on-demand prices for us-east-1, as published after AWS's 2024-11-01
DynamoDB on-demand price cut; they are assumptions of the report, not read from AWS.

Lambda duration is not something moto can count, so it is *derived*: per invocation,
the handler's own CPU (measured, :mod:`bench.cpu`) plus, per AWS call it made (counted),
boto3's own CPU per call (measured) and a network/service round trip (assumed), with
the CPU parts scaled to the function's memory (Lambda gives a function CPU in
proportion to its memory: one vCPU at 1,769 MB; this machine's core is taken as one
vCPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.cost import Run
from bench.cpu import CpuResults
from bench.meter import FunctionUsage

PRICES_DATE = "2024-11-01"


@dataclass(frozen=True)
class Prices:
    """US dollars, us-east-1, on-demand; see :data:`PRICES_DATE`."""

    dynamodb_write_per_million: float = 0.625
    dynamodb_read_per_million: float = 0.125
    lambda_request_per_million: float = 0.20
    lambda_gb_second: float = 0.0000166667
    eventbridge_event_per_million: float = 1.00
    api_gateway_rest_per_million: float = 3.50
    cloudwatch_logs_ingest_per_gb: float = 0.50


@dataclass(frozen=True)
class Assumptions:
    """What the duration model assumes (not measured here)."""

    memory_mb: int = 128
    one_vcpu_mb: int = 1769
    dynamodb_round_trip_ms: float = 4.0
    scan_page_round_trip_ms: float = 40.0
    put_events_round_trip_ms: float = 15.0
    # The reference's target does no AWS call: billed the 1 ms minimum.
    idle_handler_ms: float = 1.0

    @property
    def cpu_factor(self) -> float:
        return self.one_vcpu_mb / self.memory_mb

    def round_trip_ms(self, call: str) -> float:
        if call == "dynamodb.Scan":
            return self.scan_page_round_trip_ms
        if call.startswith("dynamodb."):
            return self.dynamodb_round_trip_ms
        return self.put_events_round_trip_ms


PRICES = Prices()
ASSUMED = Assumptions()


def handler_cpu_ms(function: str, usage: FunctionUsage, cpu: CpuResults) -> float:
    """Measured CPU of the handler's own work per invocation (full core), in ms."""
    if usage.invocations == 0:
        return 0.0
    if function == "api_handler":
        return cpu.api_post.median * 1000
    if function in ("invoice_processing", "problem_handler"):
        return cpu.invoice.median * 1000
    if function == "aggregator":
        per_record = cpu.aggregator[max(cpu.aggregator)].median * 1000 / 100
        return per_record * usage.records_in / usage.invocations
    if function == "reference_aggregator":
        return cpu.reference[(0, 1)].median * 1000
    return 0.0


def duration_ms(
    function: str, usage: FunctionUsage, cpu: CpuResults, assumed: Assumptions = ASSUMED
) -> float:
    """Derived billed duration of one average invocation of ``function``, in ms."""
    if usage.invocations == 0:
        return 0.0
    total = handler_cpu_ms(function, usage, cpu) * assumed.cpu_factor * usage.invocations
    for call, count in usage.calls.items():
        sdk = cpu.sdk.get(call)
        sdk_ms = sdk.median * 1000 if sdk else 0.0
        total += count * (sdk_ms * assumed.cpu_factor + assumed.round_trip_ms(call))
    per_invocation = total / usage.invocations
    if function == "reference_target":
        per_invocation = max(per_invocation, assumed.idle_handler_ms)
    return max(1.0, per_invocation)


@dataclass
class OrderCost:
    """Dollars per order, by item."""

    dynamodb_reads: float
    dynamodb_writes: float
    eventbridge: float
    lambda_requests: float
    lambda_compute: float
    api_gateway: float
    logs: float
    gb_seconds: float
    durations_ms: dict[str, float] = field(default_factory=dict)

    @property
    def compared(self) -> float:
        """What the designs differ in: DynamoDB, EventBridge, Lambda."""
        return (
            self.dynamodb_reads
            + self.dynamodb_writes
            + self.eventbridge
            + self.lambda_requests
            + self.lambda_compute
        )


def order_cost(
    run: Run, cpu: CpuResults, prices: Prices = PRICES, assumed: Assumptions = ASSUMED
) -> OrderCost:
    orders = run.new_orders
    total = run.total()
    durations = {name: duration_ms(name, u, cpu, assumed) for name, u in run.usage.items()}
    gb_seconds = sum(
        u.invocations * durations[name] / 1000 * assumed.memory_mb / 1024
        for name, u in run.usage.items()
    )
    return OrderCost(
        dynamodb_reads=total.read_units * prices.dynamodb_read_per_million / 1e6 / orders,
        dynamodb_writes=(total.write_units + total.index_write_units)
        * prices.dynamodb_write_per_million
        / 1e6
        / orders,
        eventbridge=total.event_chunks * prices.eventbridge_event_per_million / 1e6 / orders,
        lambda_requests=total.invocations * prices.lambda_request_per_million / 1e6 / orders,
        lambda_compute=gb_seconds * prices.lambda_gb_second / orders,
        api_gateway=run.usage["api_handler"].invocations
        * prices.api_gateway_rest_per_million
        / 1e6
        / orders,
        logs=run.log_bytes / 1024**3 * prices.cloudwatch_logs_ingest_per_gb / orders,
        gb_seconds=gb_seconds / orders,
        durations_ms=durations,
    )


def per_order(usage: Mapping[str, FunctionUsage], orders: int) -> dict[str, float]:
    """Counted figures per order (totals over every function)."""
    total = FunctionUsage()
    for u in usage.values():
        total.add(u)
    return {
        "invocations": total.invocations / orders,
        "read_units": total.read_units / orders,
        "write_units": total.write_units / orders,
        "index_write_units": total.index_write_units / orders,
        "scan_calls": total.calls["dynamodb.Scan"] / orders,
        "query_calls": total.calls["dynamodb.Query"] / orders,
        "put_events_calls": total.calls["events.PutEvents"] / orders,
        "events": total.event_chunks / orders,
    }
