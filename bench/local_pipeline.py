"""Throughput and latency of the whole pipeline on the local runtime.

Two runs, both checks passing, posted by 8 concurrent sources over real HTTP:

* saturated: 1,000 orders posted as fast as the sources go. Throughput is orders/second
  from the first POST to the last invoice; latency (last POST of an order to its invoice,
  p50 and p99) there is mostly time spent queued behind the backlog;
* paced: 200 orders at a steady rate below that throughput, where latency shows the
  pipeline itself, including the aggregator's 1-second batching window
  (``maximum_batching_window_in_seconds=1`` in ``app.py``, as deployed).

Both start after 20 warm-up orders have gone through every hop (steady state; the first
invocations create the app's AWS clients). The runtime runs as ``python -m local run``
does: every function in its own worker processes, as Lambda runs it; an order counts as
invoiced when its ``invoice_processing`` invocation returned (:mod:`bench.hops`).
``--isolation thread`` runs every handler in the runtime's process instead (the
runtime's ``--isolation thread``: one shared environment, no worker processes).

Each run also reports the CPU milliseconds spent per order by the embedded AWS (moto's
process), by the runtime's process (API, pump, stream lanes, EventBridge), by the
function workers (the app's handlers and their boto3 calls) and by the load generator
(its sending threads, in the runtime's process), and the throughput that CPU allows:
moto's and the runtime's process are each bound to one core by their interpreter lock,
and all of them share the machine's cores. Unlike wall time, these figures hold on a
machine that others share.

    python -m bench.local_pipeline [--orders 1000] [--paced-orders 200] [--rate 4]
        [--endpoint URL --endpoint-pid PID] [--isolation thread]

``--endpoint`` runs the same measurement against another AWS-compatible emulator already
listening at URL (the runtime's own ``--endpoint``); give its process id to count its CPU
in the "moto" column. ``bench/results.md`` compares moto with ministack this way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench import hops
from bench.loadgen import Outcomes, arrival_order, make_plans, post_all, running, wait_for
from local.runtime import RuntimeOptions

# Orders sent and invoiced before each measurement (not counted).
WARM_UP_ORDERS = 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def allowed_throughput(
    moto_ms: float, runtime_ms: float, workers_ms: float, load_ms: float
) -> float:
    """Orders/s the CPU allows: moto's and the runtime's process at most one core each
    (their interpreter locks; the workers are many processes), all within the machine's."""
    cores = os.cpu_count() or 1
    total = moto_ms + runtime_ms + workers_ms + load_ms
    return min(1000 / moto_ms, 1000 / (runtime_ms + load_ms), cores * 1000 / total)


def warm_up(url: str, outcomes: Outcomes, run: str) -> None:
    """A few orders through every hop before measuring, so the figures are steady state:
    the first invocations create the app's AWS clients (``bench.coldstart`` measures
    cold starts on their own)."""
    plans = make_plans(WARM_UP_ORDERS, {"pass": 1.0}, seed=2, prefix=f"warm{run}")
    post_all(url, arrival_order(plans, duplicate_rate=0.0, seed=2, block=1))
    if not wait_for(outcomes, WARM_UP_ORDERS, timeout=300):
        raise RuntimeError("the warm-up orders were not invoiced")


def descendants(pid: int) -> list[int]:
    """Process ids of every process below ``pid`` (Linux ``/proc``; none elsewhere)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def workers_cpu_seconds(excluded: int) -> float:
    """CPU seconds so far of this process's descendants (the function workers), but one."""
    return sum(process_cpu_seconds(p) for p in descendants(os.getpid()) if p != excluded)


def measure(
    orders: int,
    orders_per_second: float | None = None,
    endpoint: str | None = None,
    endpoint_pid: int = 0,
    isolation: str = "process",
) -> dict[str, float]:
    # An --endpoint emulator keeps its tables from one run to the next: new order ids.
    run = f"-{os.getpid()}" if endpoint else ""
    plans = make_plans(orders, {"pass": 1.0}, seed=1, prefix=f"tp{run}")
    posts = arrival_order(plans, duplicate_rate=0.0, seed=1, block=1)
    rate = 2 * orders_per_second if orders_per_second else None
    sending: list[float] = []
    outcomes = hops.OUTCOMES
    # Every function in its own worker processes, as Lambda runs it (the runtime's
    # default), or all in the runtime's process ("thread"); outcomes are read from the
    # runtime's hops (bench.hops) either way.
    options = RuntimeOptions(port=0, endpoint=endpoint, plugin="bench.hops", isolation=isolation)
    with running(options) as runtime:
        warm_up(runtime.url, outcomes, run)
        moto_pid = endpoint_pid or runtime.aws_pid
        moto_before, own_before = process_cpu_seconds(moto_pid), time.process_time()
        workers_before = workers_cpu_seconds(moto_pid)
        start = time.monotonic()
        last_post = post_all(runtime.url, posts, per_second=rate, cpu=sending)
        if not wait_for(outcomes, WARM_UP_ORDERS + orders, timeout=900):
            raise RuntimeError(f"only {outcomes.decided()} of {orders} orders were invoiced")
        invoiced = {
            order: entries[0][1]
            for order, entries in outcomes.created.items()
            if order in last_post
        }
        moto_cpu = process_cpu_seconds(moto_pid) - moto_before
        own_cpu = time.process_time() - own_before
        workers_cpu = workers_cpu_seconds(moto_pid) - workers_before
    latencies = [invoiced[o] - last_post[o] for o in invoiced]
    elapsed = max(invoiced.values()) - start
    load_ms = 1000 * sum(sending) / orders
    moto_ms, runtime_ms = 1000 * moto_cpu / orders, 1000 * own_cpu / orders - load_ms
    workers_ms = 1000 * workers_cpu / orders
    return {
        "moto_cpu_ms": moto_ms,
        "runtime_cpu_ms": runtime_ms,
        "workers_cpu_ms": workers_ms,
        "load_cpu_ms": load_ms,
        "allowed_orders_per_second": allowed_throughput(moto_ms, runtime_ms, workers_ms, load_ms),
        "offered": orders_per_second or 0.0,
        "orders": orders,
        "seconds": elapsed,
        "posting_seconds": max(last_post.values()) - start,
        "orders_per_second": orders / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "mean_ms": 1000 * statistics.fmean(latencies),
    }


def report(runs: list[dict[str, float]]) -> str:
    lines = [
        (
            "| run | orders | offered load | wall time | throughput | latency p50 | latency p99 "
            "| CPU ms/order: moto / runtime / workers / load | CPU allows |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for figures in runs:
        offered = figures["offered"]
        load = f"{offered:g} orders/s" if offered else "as fast as possible"
        lines.append(
            f"| {'paced' if offered else 'saturated'} | {figures['orders']:.0f} | {load} "
            f"| {figures['seconds']:.1f} s | {figures['orders_per_second']:.1f} orders/s "
            f"| {figures['p50_ms']:.0f} ms | {figures['p99_ms']:.0f} ms "
            f"| {figures['moto_cpu_ms']:.0f} / {figures['runtime_cpu_ms']:.0f} / "
            f"{figures['workers_cpu_ms']:.0f} / {figures['load_cpu_ms']:.0f} | {figures['allowed_orders_per_second']:.0f} orders/s |"
        )
    return "\n".join(lines)


def measure_in_child(
    orders: int, orders_per_second: float | None, endpoint: list[str]
) -> dict[str, float]:
    """One measurement in a fresh interpreter: the runtime serves one app per process."""
    command = [sys.executable, "-m", "bench.local_pipeline", "--child", "--orders", str(orders)]
    if orders_per_second:
        command += ["--rate", str(orders_per_second)]
    command += endpoint
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=1800)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--paced-orders", type=int, default=200)
    parser.add_argument("--rate", type=float, default=None, help="paced orders per second")
    parser.add_argument("--endpoint", default=None, help="another emulator's URL")
    parser.add_argument("--endpoint-pid", type=int, default=0, help="its process id")
    parser.add_argument("--isolation", choices=("process", "thread"), default="process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = measure(args.orders, args.rate, args.endpoint, args.endpoint_pid, args.isolation)
        print(json.dumps(figures))
        return
    endpoint = ["--endpoint", args.endpoint, "--endpoint-pid", str(args.endpoint_pid)]
    endpoint = (endpoint if args.endpoint else []) + ["--isolation", args.isolation]
    runs = [
        measure_in_child(args.orders, None, endpoint),
        measure_in_child(args.paced_orders, args.rate or 4.0, endpoint),
    ]
    print("## Local pipeline: throughput and latency\n")
    print(report(runs))


if __name__ == "__main__":
    main()
