"""The markdown report: every figure, with how it was obtained."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bench import capacity, cost, money
from bench.coldstart import ColdStartResults
from bench.cost import CostResults, Run
from bench.cpu import CpuResults, Timing
from bench.env import ROOT
from bench.meter import FunctionUsage
from chalicelib.config import get_settings

Row = Sequence[str]


def table(headers: Row, rows: Sequence[Row], align: str = "") -> str:
    spec = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in spec]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: float, digits: int = 2) -> str:
    if math.isinf(value):
        return "∞"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.{digits}f}"


def ratio(reference: float, project: float) -> str:
    if project == 0:
        return "—" if reference == 0 else "∞"
    value = reference / project
    return f"{value:.2f}×" if value < 10 else f"{value:,.1f}×" if value < 100 else f"{value:,.0f}×"


def dollars(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:,.3f}"


def ms(timing: Timing) -> str:
    return f"{timing.median * 1000:.3f} ({timing.p10 * 1000:.3f}–{timing.p90 * 1000:.3f})"


# --- per-order rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    label: str
    project: Run
    reference: Run
    derived: bool


def _u(run: Run, *names: str) -> FunctionUsage:
    total = FunctionUsage()
    for name in names:
        if name in run.usage:
            total.add(run.usage[name])
    return total


Metric = Callable[[Run], float]


def _per(metric: Callable[[FunctionUsage], float], *names: str) -> Metric:
    def value(run: Run) -> float:
        usage = _u(run, *names) if names else run.total()
        return metric(usage) / run.new_orders

    return value


AGGREGATORS = ("aggregator", "reference_aggregator")
TARGETS = ("invoice_processing", "problem_handler", "reference_target")
METRICS: list[tuple[str, Metric]] = [
    ("Lambda invocations: API (`api_handler`)", _per(lambda u: u.invocations, "api_handler")),
    ("Lambda invocations: stream aggregator", _per(lambda u: u.invocations, *AGGREGATORS)),
    (
        "Lambda invocations: targets (invoice/problem; reference: its one target)",
        _per(lambda u: u.invocations, *TARGETS),
    ),
    ("Lambda invocations: total", _per(lambda u: u.invocations)),
    ("Stream records delivered to the aggregator", _per(lambda u: u.records_in, *AGGREGATORS)),
    ("DynamoDB Query calls", _per(lambda u: u.calls["dynamodb.Query"])),
    ("DynamoDB Scan calls (1 MB pages)", _per(lambda u: u.calls["dynamodb.Scan"])),
    ("DynamoDB items read by Scans", _per(lambda u: u.scanned_items)),
    (
        "DynamoDB write calls (PutItem + UpdateItem + DeleteItem)",
        _per(
            lambda u: (
                u.calls["dynamodb.PutItem"]
                + u.calls["dynamodb.UpdateItem"]
                + u.calls["dynamodb.DeleteItem"]
            )
        ),
    ),
    ("Read request units", _per(lambda u: u.read_units)),
    ("Write request units, table", _per(lambda u: u.write_units)),
    ("Write request units, index", _per(lambda u: u.index_write_units)),
    ("PutEvents calls", _per(lambda u: u.calls["events.PutEvents"])),
    ("PutEvents entries (billed 64 KB events)", _per(lambda u: u.event_chunks)),
]


def columns_of(results: CostResults) -> list[Column]:
    """Counted sizes, then the derived ones (from the largest counted size)."""
    columns = [Column(f"{s.table_orders:,}", s.project, s.reference, False) for s in results.sizes]
    if results.sizes:
        last = results.sizes[-1]
        required = get_settings().required_checks
        for size in results.derived_sizes:
            columns.append(
                Column(
                    f"{size:,} (derived)",
                    cost.derive_project(last.project, size),
                    cost.derive_reference(last.reference, size, required),
                    True,
                )
            )
    return columns


def cost_section(results: CostResults, columns: Sequence[Column], cpu: CpuResults) -> list[str]:
    headers = ["per order"]
    for c in columns:
        headers += [f"project @{c.label}", f"reference @{c.label}", "ratio"]
    rows: list[list[str]] = []
    for label, metric in METRICS:
        row = [label]
        for c in columns:
            p, r = metric(c.project), metric(c.reference)
            row += [num(p), num(r), ratio(r, p)]
        rows.append(row)
    money_rows: list[list[str]] = []
    costs = [
        (money.order_cost(c.project, cpu), money.order_cost(c.reference, cpu)) for c in columns
    ]
    items: list[tuple[str, Callable[[money.OrderCost], float]]] = [
        ("DynamoDB reads", lambda o: o.dynamodb_reads),
        ("DynamoDB writes (table + index)", lambda o: o.dynamodb_writes),
        ("EventBridge events", lambda o: o.eventbridge),
        ("Lambda requests", lambda o: o.lambda_requests),
        ("Lambda compute (derived durations)", lambda o: o.lambda_compute),
        ("**Total compared**", lambda o: o.compared),
        (
            "API Gateway REST requests (the same on both sides: not compared)",
            lambda o: o.api_gateway,
        ),
        ("CloudWatch Logs ingestion (this project's logs only)", lambda o: o.logs),
    ]
    for label, pick in items:
        row = [label]
        compared = "not compared" not in label and "only" not in label
        for project_cost, reference_cost in costs:
            p, r = pick(project_cost) * 1e6, pick(reference_cost) * 1e6
            row += [dollars(p), dollars(r) if compared else "—", ratio(r, p) if compared else "—"]
        money_rows.append(row)
    money_headers = ["$ per million orders"] + headers[1:]
    shipped = [s.reference_as_shipped for s in results.sizes]
    counted = " and ".join(f"{s.table_orders:,}" for s in results.sizes)
    derived = " and ".join(f"{size:,}" for size in results.derived_sizes)
    by_function = _by_function(results, cpu)
    lines = [
        "## 1. AWS request cost per order",
        "",
        (
            f"{results.new_orders} new orders per run, on top of a table already holding the "
            "stated number of finished orders. Each order's checks arrive in two waves (every "
            "order's first check, then every order's second check), so each check lands in a "
            "different stream batch: the dearer case for this project (one Query and one event "
            "per order per wave). Figures are per new order; *ratio* = reference / project."
        ),
        "",
        table(headers, rows),
        "",
        table(money_headers, money_rows),
        "",
        *by_function,
        "Counted vs. derived:",
        "",
        (
            f"* The {counted} columns are **counted** on moto: every AWS call through "
            "botocore hooks on the clients the code uses, every Lambda invocation by wrapping "
            "the handlers; read/write units computed by AWS's rules from the items read and "
            "written (sizes in `bench/sizing.py`; moto's `ReturnConsumedCapacity` returns fixed "
            "values — 1.0 for a Query, a 1 MB Scan page or a 5 KB PutItem, 0.5 for an "
            "UpdateItem — so it is not used)."
        ),
        f"* The {derived} columns are **derived**: this project's per-order figures are the "
        f"counted ones (identical at {counted}: nothing it does reads other orders); "
        "the reference's Scan pages and units are recomputed by the same rule over a "
        "table of that many orders, items from the same generator (1 MiB pages), everything "
        "else as counted. " + _validation(results),
        "* Lambda compute is **derived** (moto cannot time Lambda): per invocation, the "
        "handler's own CPU (section 2) and boto3's CPU per AWS call (section 2), both scaled "
        f"to {money.ASSUMED.memory_mb} MB (x{money.ASSUMED.cpu_factor:.1f}: one vCPU at "
        f"{money.ASSUMED.one_vcpu_mb:,} MB), plus an assumed round trip per call "
        f"(DynamoDB {money.ASSUMED.dynamodb_round_trip_ms:.0f} ms, Scan page "
        f"{money.ASSUMED.scan_page_round_trip_ms:.0f} ms, PutEvents "
        f"{money.ASSUMED.put_events_round_trip_ms:.0f} ms). Derived average durations "
        "per invocation: " + _durations(columns, cpu) + ".",
        (
            "* Ingest is the same on both sides: the reference's source events are written by "
            "the same store call (same items, same units) and counted as API invocations; the "
            "reference's target is counted as an invocation that makes no AWS call (in its "
            "favour); this project's targets read the order (1 Query) and record the outcome "
            "once (conditional UpdateItem), the invoice handler also marks the customer "
            "notified (UpdateItem)."
        ),
        "* The reference runs with a batch size of 1, the only setting at which it sees "
        "every record. With a batch size of 100 (Lambda's default), it aggregates only the "
        "first record of each batch: "
        + "; ".join(
            f"at {s.table_orders:,} orders, {s.completed} of {s.new_orders} orders got an "
            "event with every check"
            for s in shipped
        )
        + " (this project: "
        + "; ".join(f"{s.project.completed} of {s.project.new_orders}" for s in results.sizes)
        + " orders invoiced or rejected, as planned).",
        (
            "* The aggregator's event source filter ("
            + results.filter_source
            + ", applied before batching, as Lambda does) passes source-event records only: "
            "the app's own order-record writes never invoke it. "
            + "; ".join(
                f"At {s.table_orders:,}: {s.project.stream_records} records delivered, "
                f"{s.project.filtered_out} filtered out"
                for s in results.sizes
            )
            + " (moto emits two stream records for an UpdateItem that creates an item; "
            "AWS one)."
        ),
        (
            "* Streams read by Lambda are free; the timeout sweep (1 invocation a minute, "
            "4 index Queries) is a fixed cost of about 43,800 invocations a month whatever "
            "the load, not per order, and is not run here."
        ),
        (
            f"* Prices (assumptions, us-east-1, on-demand, as published after the "
            f"{money.PRICES_DATE} DynamoDB price cut): DynamoDB "
            f"${money.PRICES.dynamodb_write_per_million} per million write request units, "
            f"${money.PRICES.dynamodb_read_per_million} per million read request units; Lambda "
            f"${money.PRICES.lambda_request_per_million:.2f} per million requests + "
            f"${money.PRICES.lambda_gb_second} per GB-s; EventBridge "
            f"${money.PRICES.eventbridge_event_per_million:.2f} per million custom events (64 KB "
            f"chunks); API Gateway REST ${money.PRICES.api_gateway_rest_per_million:.2f} per "
            "million requests (first tier); CloudWatch Logs "
            f"${money.PRICES.cloudwatch_logs_ingest_per_gb:.2f} per GB ingested; DynamoDB "
            "Streams reads by Lambda: free. Check them against the AWS price pages before "
            "quoting."
        ),
        "",
    ]
    return lines


def _by_function(results: CostResults, cpu: CpuResults) -> list[str]:
    if not results.sizes:
        return []
    last = results.sizes[-1]
    rows: list[list[str]] = []
    for run in (last.project, last.reference):
        durations = money.order_cost(run, cpu).durations_ms
        for name, usage in run.usage.items():
            if not usage.invocations:
                continue
            design = "project" if run is last.project else "reference"
            calls = ", ".join(
                f"{call.split('.', 1)[1]} {count / run.new_orders:.2f}"
                for call, count in sorted(usage.calls.items())
            )
            rows.append(
                [
                    design,
                    f"`{name}`",
                    num(usage.invocations / run.new_orders),
                    num(usage.records_in / usage.invocations) if usage.records_in else "—",
                    calls or "—",
                    num(usage.read_units / run.new_orders),
                    num(usage.write_units / run.new_orders),
                    num(usage.index_write_units / run.new_orders),
                    f"{durations[name]:,.0f}",
                ]
            )
    return [
        (
            f"Per function, per order, at {last.table_orders:,} orders (counted; duration derived, "
            "see below):"
        ),
        "",
        table(
            [
                "design",
                "function",
                "invocations",
                "records per invocation",
                "AWS calls",
                "RRU",
                "WRU",
                "index WRU",
                "ms per invocation",
            ],
            rows,
            "llrrlrrrr",
        ),
        "",
    ]


def _validation(results: CostResults) -> str:
    parts = []
    for s in results.sizes:
        counted, derived = cost.validate_derivation(s.reference)
        parts.append(f"{num(counted)} counted vs. {num(derived)} derived at {s.table_orders:,}")
    return (
        "Check of the derivation against the counted runs (Scan read units, at moto's "
        "1,000,000-byte page): " + "; ".join(parts) + "."
    )


def _durations(columns: Sequence[Column], cpu: CpuResults) -> str:
    if not columns:
        return "none"
    first, last = columns[0], columns[-1]
    project = money.order_cost(first.project, cpu).durations_ms
    parts = [f"{name} {value:.0f} ms" for name, value in project.items() if value]
    for column in (first, last):
        reference = money.order_cost(column.reference, cpu).durations_ms
        parts.append(
            f"reference_aggregator {reference['reference_aggregator']:.0f} ms at {column.label}"
        )
    return ", ".join(parts)


def targets_section(results: CostResults) -> list[str]:
    rows: list[list[str]] = []
    sizes = results.sizes
    if not sizes:
        return []
    first = money.per_order(sizes[0].project.usage, sizes[0].project.new_orders)
    last = money.per_order(sizes[-1].project.usage, sizes[-1].project.new_orders)
    same = all(math.isclose(first[k], last[k], rel_tol=1e-9) for k in first)
    done = [(s.project.completed, s.project.new_orders, s.project.notes) for s in sizes]
    rows.append(
        [
            "Every order reaches its outcome (harness check)",
            "met" if all(c == n and not notes for c, n, notes in done) else "missed",
            "; ".join(
                f"{c} of {n} invoiced or rejected as planned"
                + (f" ({', '.join(notes)})" if notes else "")
                for c, n, notes in done
            ),
        ]
    )
    rows.append(
        [
            "Cost per order independent of table size",
            "met" if same else "missed",
            "identical per-order counts at " + " and ".join(f"{s.table_orders:,}" for s in sizes)
            if same
            else f"{first} vs {last}",
        ]
    )
    worst = max(s.project.max_queries_per_order_and_batch for s in sizes)
    queries = sum(s.project.usage["aggregator"].calls["dynamodb.Query"] for s in sizes)
    query_units = sum(s.project.usage["aggregator"].read_units for s in sizes)
    rows.append(
        [
            "≤ 1 strongly consistent Query per distinct order per stream batch",
            "met" if worst <= 1 else "missed",
            f"at most {worst} per (batch, order)",
        ]
    )
    rows.append(
        [
            "≤ 1 RCU per Query for a normal order",
            "met" if queries and query_units / queries <= 1 else "missed",
            f"{num(query_units / queries if queries else 0)} read units per aggregator Query",
        ]
    )
    scans = sum(s.project.total().calls["dynamodb.Scan"] for s in sizes)
    rows.append(["Zero Scans", "met" if scans == 0 else "missed", f"{scans} Scans"])
    batches = [b for s in sizes for b in s.project.put_events_batches]
    over = [b for b in batches if len(b) > math.ceil(sum(b) / 10)]
    calls = sum(len(b) for b in batches)
    entries = sum(sum(b) for b in batches)
    rows.append(
        [
            "PutEvents calls ≤ ceil(entries / 10) per invocation",
            "met" if not over else "missed",
            f"{calls} calls for {entries} entries in {len(batches)} aggregator invocations"
            + (f"; {len(over)} invocation(s) over" if over else ""),
        ]
    )
    return [
        "## Targets",
        "",
        table(["target", "result", "evidence"], rows, "lll"),
        "",
    ]


def cpu_section(cpu: CpuResults) -> list[str]:
    rows = []
    for spread, timing in cpu.aggregator.items():
        rows.append(
            [
                f"{spread}",
                ms(timing),
                f"{100 / timing.median:,.0f}",
                f"{spread / timing.median:,.0f}",
            ]
        )
    reference_rows = []
    for (size, records), timing in cpu.reference.items():
        label = "answered instantly" if size == 0 else f"{size:,} orders in memory"
        reference_rows.append(
            [
                f"{records}",
                label,
                ms(timing),
                f"{records / timing.median:,.0f}",
                f"{1 / timing.median:,.0f}",
            ]
        )
    sdk_rows = [[name, ms(t)] for name, t in cpu.sdk.items()]
    spots = [
        [
            f"`{s.where}`",
            f"`{s.function}`",
            f"{s.calls:,}",
            f"{s.own_share:.1%}",
            f"{s.total_share:.1%}",
        ]
        for s in cpu.hot_spots
    ]
    mine = [
        [
            f"`{s.where}`",
            f"`{s.function}`",
            f"{s.calls:,}",
            f"{s.own_share:.1%}",
            f"{s.total_share:.1%}",
        ]
        for s in cpu.chalicelib_spots
    ]
    areas = [[name, f"{share:.1%}"] for name, share in cpu.areas if share >= 0.005]
    best = max(cpu.aggregator.values(), key=lambda t: t.median)
    return [
        "## 2. Aggregator CPU",
        "",
        (
            "The aggregator's Lambda entry point (`app.handler_map['aggregator']`, Chalice's "
            "event wrapping included) on 100-record batches, AWS answered in memory by fake "
            "clients (canned Query items, `{}` for UpdateItem, success for PutEvents): only the "
            "handler's own work is timed (decoding stream images, grouping, reading items, "
            "building and serializing events, logs and metrics to a counting sink). CPU time "
            "(`time.process_time`), median (p10–p90) over repeated calls; records/s/core = "
            "100 / median."
        ),
        "",
        table(["orders in the batch", "ms per batch", "records/s/core", "orders/s/core"], rows),
        "",
        (
            "The reference handler on the same kind of batches (records consumed/s counts the "
            "whole batch; records aggregated/s counts the one record it looks at). Its fake "
            "Scan filters an in-memory table: that filtering is DynamoDB's work in AWS (it "
            "shows up there as read units and waiting time, section 1), so the *answered "
            "instantly* rows are the handler's own work."
        ),
        "",
        table(
            [
                "records in the batch",
                "Scan",
                "ms per batch",
                "records consumed/s",
                "records aggregated/s",
            ],
            reference_rows,
        ),
        "",
        (
            f"Other handlers, one invocation, AWS answered in memory: `POST /orders/{{id}}/events` "
            f"(`app(event, context)`, API Gateway proxy event) {ms(cpu.api_post)} ms; "
            f"`invoice_processing` (read, invoice, notify) {ms(cpu.invoice)} ms."
        ),
        "",
        (
            "boto3's own CPU per call (build, validate, serialize, SigV4-sign, parse; HTTP "
            "answered in memory) — per AWS call, this is more than the aggregator's own work per "
            "order:"
        ),
        "",
        table(["call", "ms per call"], sdk_rows),
        "",
        (
            f"### Profile (cProfile, 200 batches of 100 records over {cpu.profile_spread} orders, "
            f"{cpu.profile_seconds:.1f} s CPU under the profiler)"
        ),
        "",
        "Own time by area:",
        "",
        table(["area", "share of own time"], areas),
        "",
        "Top functions by own time:",
        "",
        table(["where", "function", "calls", "own", "incl. callees"], spots, "llrrr"),
        "",
        "`chalicelib` functions by time including callees:",
        "",
        table(["where", "function", "calls", "own", "incl. callees"], mine, "llrrr"),
        "",
        (
            "Candidate changes, measured by patching them into this process (`chalicelib`'s "
            "files untouched; `bench/cpu.py` `what_ifs`), ms per 100-record batch (median):"
        ),
        "",
        _what_if_table(cpu),
        "",
        (
            f"At {money.ASSUMED.memory_mb} MB a function gets 1/{money.ASSUMED.cpu_factor:.1f} "
            f"of a vCPU: the slowest case above ({best.median * 1000:.1f} ms) becomes "
            f"~{best.median * 1000 * money.ASSUMED.cpu_factor:.0f} ms, while the same batch "
            "makes ~150 AWS calls (boto3 CPU plus round trips, section 4)."
        ),
        "",
    ]


def _what_if_table(cpu: CpuResults) -> str:
    base = cpu.what_ifs.get("as is", {})
    spreads = sorted(base)
    rows = []
    for label, timings in cpu.what_ifs.items():
        row = [label]
        for spread in spreads:
            t = timings[spread]
            saved = 1 - t.median / base[spread].median
            row.append(f"{t.median * 1000:.2f}" + ("" if label == "as is" else f" ({-saved:+.0%})"))
        rows.append(row)
    headers = ["variant"] + [f"{k} orders in the batch" for k in spreads]
    return table(headers, rows)


def coldstart_section(cold: ColdStartResults) -> list[str]:
    app, boto, bare = cold.samples["app"], cold.samples["boto3"], cold.samples["bare"]
    rows = [
        [
            label,
            f"{s.median_seconds * 1000:.0f}",
            ratio(s.median_seconds, boto.median_seconds) if s is not bare else "—",
            f"{s.median_cpu_seconds * 1000:.0f}",
            ratio(s.median_cpu_seconds, boto.median_cpu_seconds) if s is not bare else "—",
            f"{s.median_maxrss_kb / 1024:.1f}",
            f"{s.median_traced_peak / 1024 / 1024:.1f}",
        ]
        for label, s in (
            ("`import app`", app),
            ("`import boto3`", boto),
            ("`pass` (interpreter only)", bare),
        )
    ]
    top = [
        [f"`{'  ' * c.depth}{c.module}`", f"{c.cumulative_ms:.1f}", f"{c.self_ms:.1f}"]
        for c in cold.imports[:16]
    ]
    own = [
        [f"`{c.module}`", f"{c.cumulative_ms:.1f}", f"{c.self_ms:.1f}"]
        for c in cold.imports
        if c.module == "app" or c.module.startswith(("chalicelib", "aws_lambda_powertools."))
    ]
    own = sorted(own, key=lambda r: float(r[1]), reverse=True)[:10]
    lines = [
        "## 3. Cold start",
        "",
        (
            f"A fresh `python -c` per measurement ({cold.runs} of each, interleaved; the app's "
            "environment set to dummy values), median. Import time by `perf_counter` (wall) and "
            "`process_time` (CPU: steadier on a busy machine) around the import; peak RSS "
            "(`VmHWM`) after it (includes the interpreter); Python "
            "allocations' peak by `tracemalloc` (3 separate runs). Ratio = to `import boto3`."
        ),
        "",
        table(
            [
                "",
                "import ms (wall)",
                "ratio to boto3",
                "import ms (CPU)",
                "ratio to boto3",
                "peak RSS MB",
                "tracemalloc peak MB",
            ],
            rows,
        ),
        "",
        (
            "Top imports of `import app` by cumulative time (`-X importtime`, median of 3 "
            "runs; indentation = import depth):"
        ),
        "",
        table(["module", "cumulative ms", "self ms"], top),
        "",
        "The app's own modules and Powertools:",
        "",
        table(["module", "cumulative ms", "self ms"], own),
        "",
    ]
    if cold.zip is None:
        lines += [
            (
                "Deployment zip: not built — run `make package` (it writes "
                "`build/package/deployment.zip`), then `make bench` again."
            ),
            "",
        ]
    else:
        z = cold.zip
        largest = ", ".join(f"`{name}` {size / 1024:,.0f} KB" for name, size in z.largest)
        lines += [
            (
                f"Deployment zip (`{z.path}`, built {z.built}): {z.compressed / 1024:,.0f} KB "
                f"compressed, {z.uncompressed / 1024:,.0f} KB unpacked, {z.files} files "
                f"(Lambda's limits: 50 MB zipped, 250 MB unpacked). Largest entries, unpacked: "
                f"{largest}."
            ),
            "",
        ]
    return lines


def capacity_section(plan: capacity.CapacityPlan) -> list[str]:
    rows = [
        [l.name, l.quota, l.usage, num(l.orders_per_second), l.to_go_higher] for l in plan.limits
    ]
    consumers = [
        [
            f"{c.memory_mb:,} MB",
            f"{c.batch_records:.0f}",
            f"{c.batch_ms:,.0f}",
            f"{c.orders_per_slot:,.0f}",
        ]
        for c in plan.consumers
    ]
    return [
        "## 4. Capacity plan (on paper)",
        "",
        (
            "Default quotas (us-east-1) against what one order was counted to use (the "
            f"{plan.source_orders:,}-order run); durations derived as in section 1. Each order is its own partition key, so "
            "no order is a hot key (an order makes ~5 writes in its lifetime); the sparse index "
            f"`PendingByDeadline` is keyed on only PENDING_SHARDS = {plan.pending_shards} values "
            "and its sort key (the deadline) only grows, so DynamoDB's split-for-heat cannot "
            "spread one value's writes: each value is one partition's 1,000 WCU/s."
        ),
        "",
        table(
            ["limit", "default quota", "one order uses", "orders/s", "to go higher"],
            rows,
            "lllrl",
        ),
        "",
        (
            f"**Binding first: {plan.binding.name}, at ~{plan.binding.orders_per_second:,.0f} "
            "orders/s.**"
        ),
        "",
        (
            "The stream consumer in detail (one batch slot = one shard at ParallelizationFactor "
            "1; a new on-demand table starts with about 4 partitions, hence 4 stream shards, "
            "and splits them only under load near 1,000 WCU/s each or when pre-warmed):"
        ),
        "",
        table(
            ["aggregator memory", "records per batch", "ms per batch", "orders/s per slot"],
            consumers,
        ),
        "",
        f"To go ten times higher (~{plan.target:,.0f} orders/s):",
        "",
        *[f"* {change}" for change in plan.changes],
        (
            "* The aggregator's Queries are sequential; running them concurrently (a small "
            "thread pool over one boto3 client) cuts a batch's waiting time several-fold and "
            "with it the shards needed."
        ),
        "",
    ]


def summary_section(
    columns: Sequence[Column],
    cpu: CpuResults,
    cold: ColdStartResults,
    plan: capacity.CapacityPlan,
) -> list[str]:
    parts = []
    for c in columns:
        p = money.order_cost(c.project, cpu).compared * 1e6
        r = money.order_cost(c.reference, cpu).compared * 1e6
        parts.append(f"@{c.label}: {dollars(p)} vs {dollars(r)} ({ratio(r, p)})")
    worst = cpu.aggregator[max(cpu.aggregator)]
    app_s, boto_s = cold.samples["app"].median_seconds, cold.samples["boto3"].median_seconds
    app_c = cold.samples["app"].median_cpu_seconds
    boto_c = cold.samples["boto3"].median_cpu_seconds
    return [
        "## Summary",
        "",
        "* $ per million orders, this project vs. reference (DynamoDB + EventBridge + "
        "Lambda): " + "; ".join(parts) + ".",
        "* Aggregator CPU: "
        + ", ".join(
            f"{100 / t.median:,.0f} records/s/core over {k} order{'s' if k > 1 else ''}"
            for k, t in cpu.aggregator.items()
        )
        + f" (slowest: {worst.median * 1000:.1f} ms per 100-record batch).",
        (
            f"* Cold start: `import app` {app_s * 1000:.0f} ms wall ({app_c * 1000:.0f} ms CPU), "
            f"{app_s / boto_s:.2f}× (CPU {app_c / boto_c:.2f}×) `import boto3` "
            f"({boto_s * 1000:.0f} ms, {boto_c * 1000:.0f} ms CPU); peak RSS "
            f"{cold.samples['app'].median_maxrss_kb / 1024:.1f} MB vs "
            f"{cold.samples['boto3'].median_maxrss_kb / 1024:.1f} MB."
        ),
        (
            f"* Capacity with default settings: ~{plan.binding.orders_per_second:,.0f} orders/s, "
            f"bound by {plan.binding.name}."
        ),
        "",
    ]


def build(
    results: CostResults,
    cpu: CpuResults,
    cold: ColdStartResults,
    pending_shards: int,
    seconds: float,
) -> str:
    plan = capacity.plan(results.sizes[-1].project, cpu, pending_shards)
    columns = columns_of(results)
    lines = [
        "# Benchmarks: this project vs. the reference design",
        "",
        (
            f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on commit `{_commit()}`, "
            f"Python {platform.python_version()}, {os.cpu_count()} cores (shared), "
            f"{seconds:.0f} s in all (cost {results.seconds:.0f} s, CPU {cpu.seconds:.0f} s, "
            f"cold start {cold.seconds:.0f} s). `make bench` regenerates this file up to its "
            "kept marker (the sections after it come from `bench.local_pipeline` and "
            "before/after runs); `docs/bench.md` describes the method."
        ),
        "",
        *summary_section(columns, cpu, cold, plan),
        *targets_section(results),
        *cost_section(results, columns, cpu),
        *cpu_section(cpu),
        *coldstart_section(cold),
        *capacity_section(plan),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()
