"""Soak run: the whole pipeline on the local runtime under duplicates, reordering and faults.

1,000 orders (70% both checks pass, 20% one fails, 10% one check never arrives), 10%
duplicate posts, arrival shuffled, and 5% of the app's AWS calls failed with a
ThrottlingException by a proxy in front of moto. The runtime plays Lambda's rules with
the deployed stream settings (ParallelizationFactor 10 …) and delivers 10% of stream
batches and EventBridge events twice (``--duplicate-rate``). Sources retry 5xx answers, as real ones
would. When every order is decided it checks and prints the invariants:

* approved orders = invoices, rejected orders = problem records, incomplete = timeouts;
* zero lost (every order has the outcome its results call for);
* zero doubled (no order has a second outcome record).

    python -m bench.soak [--orders 1000] [--fault-rate 0.05] [--seed 42]

Exits 1 if an invariant fails. Not part of ``make test`` (about two minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.loadgen import (
    Plan,
    arrival_order,
    make_plans,
    post_all,
    running,
    wait_for,
    watching_outcomes,
)
from local.runtime import RuntimeOptions
from local_plugin.demo import call

MIX = {"pass": 0.7, "fail": 0.2, "missing": 0.1}


@dataclass
class SoakResult:
    orders: int
    posts: int
    faults: int
    calls: int
    expected: Counter[str]
    recorded: Counter[str]
    views: Counter[str]
    lost: list[str]
    doubled: list[str]
    wrong: list[str]
    notified_twice: list[str]
    failure_queue: int
    seconds: float

    @property
    def invariants(self) -> dict[str, bool]:
        return {
            "approved orders = invoices": self.expected["invoiced"] == self.recorded["invoiced"],
            "rejected orders = problem records": self.expected["rejected"]
            == self.recorded["rejected"],
            "incomplete orders = timeouts": self.expected["timed-out"]
            == self.recorded["timed-out"],
            "zero lost": not self.lost,
            "zero doubled": not self.doubled,
            "every order's view shows its outcome": not self.wrong,
        }


def _view(base: str, order_id: str) -> dict[str, Any]:
    for _ in range(50):
        status, body = call("GET", f"{base}/orders/{order_id}")
        if status == 200:
            return dict(body)
        time.sleep(0.1)
    raise RuntimeError(f"could not read order {order_id}")


def run(
    orders: int, fault_rate: float, seed: int, timeout_seconds: int, duplicate_rate: float = 0.1
) -> SoakResult:
    plans: list[Plan] = make_plans(orders, MIX, seed, "soak")
    posts = arrival_order(plans, duplicate_rate=0.10, seed=seed)
    # Handlers in this process: the soak watches outcomes by patching the app's classes.
    options = RuntimeOptions(
        port=0,
        isolation="thread",
        env={"ORDER_TIMEOUT_SECONDS": str(timeout_seconds)},
        schedule_seconds=2.0,
        fault_rate=fault_rate,
        fault_seed=seed,
        duplicate_rate=duplicate_rate,
    )
    start = time.monotonic()
    with running(options) as runtime, watching_outcomes() as outcomes:
        post_all(runtime.url, posts)
        wait_for(outcomes, orders, timeout=timeout_seconds + 600)
        time.sleep(5)  # a redelivery that doubled something would show by now
        with ThreadPoolExecutor(8) as pool:
            found = pool.map(lambda plan: _view(runtime.url, plan.order_id), plans)
            views = {plan.order_id: view for plan, view in zip(plans, found, strict=True)}
        assert runtime.pipeline is not None and runtime.faults is not None
        failure_queue = len(runtime.pipeline.failures.entries)
        faults, calls = runtime.faults.injected, runtime.faults.injected + runtime.faults.forwarded
    created = outcomes.created
    return SoakResult(
        orders=orders,
        posts=len(posts),
        faults=faults,
        calls=calls,
        expected=Counter(plan.expected for plan in plans),
        recorded=outcomes.kinds(),
        views=Counter(view["status"] for view in views.values()),
        lost=[p.order_id for p in plans if not created.get(p.order_id)],
        doubled=[order for order, entries in created.items() if len(entries) > 1],
        wrong=[
            p.order_id
            for p in plans
            if views[p.order_id]["status"] != p.expected or "decidedAt" not in views[p.order_id]
        ],
        notified_twice=[order for order, n in outcomes.notified.items() if n > 1],
        failure_queue=failure_queue,
        seconds=time.monotonic() - start,
    )


def report(result: SoakResult) -> str:
    lines = [
        (
            f"{result.orders} orders, {result.posts} posts (10% duplicates, shuffled), "
            f"{result.faults} of {result.calls} AWS calls failed by injection "
            f"({result.faults / max(result.calls, 1):.1%}), {result.seconds:.0f} s"
        ),
        "",
        "| outcome | orders whose results call for it | outcome records | order views |",
        "|---|---|---|---|",
    ]
    for kind in ("invoiced", "rejected", "timed-out"):
        lines.append(
            f"| {kind} | {result.expected[kind]} | {result.recorded[kind]} | {result.views[kind]} |"
        )
    lines += [
        "",
        (
            f"lost: {len(result.lost)}, doubled: {len(result.doubled)}, wrong view: "
            f"{len(result.wrong)}, customers told twice: {len(result.notified_twice)}, "
            f"records in the failure queue: {result.failure_queue}"
        ),
        "",
    ]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in result.invariants.items()]
    return "\n".join(lines)


def main() -> int:
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--order-timeout", type=int, default=30)
    parser.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.1,
        help="fraction of stream batches and EventBridge events the runtime delivers twice",
    )
    args = parser.parse_args()
    result = run(args.orders, args.fault_rate, args.seed, args.order_timeout, args.duplicate_rate)
    print("## Soak run\n")
    print(report(result))
    return 0 if all(result.invariants.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
