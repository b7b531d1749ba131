"""Soak run: the whole pipeline on the local runtime under duplicates, reordering and faults.

1,000 orders (70% both checks pass, 20% one fails, 10% one check never arrives), 10%
duplicate posts, arrival shuffled, and 5% of the app's AWS calls failed with a
ThrottlingException by a proxy in front of moto. The runtime is a real ``python -m local
run`` process, as ``make run`` starts it: each function in its own worker processes
(Lambda's isolation), the deployed stream settings (ParallelizationFactor 10 …), and 10%
of stream batches and EventBridge events delivered twice (``--duplicate-rate``). Sources
retry 5xx answers, as real ones would. Everything is read from what a user sees: each
order's ``GET``, the targets' replies in the runtime's hop lines, and the app's own
``Order sent`` log lines (``--verbose``). When every order is decided it checks and prints
the invariants:

* approved orders = invoices, rejected orders = problem records, incomplete = timeouts;
* zero lost (every order has the outcome its results call for);
* zero doubled (no target reply named a second outcome for an order);
* zero customers told twice, zero invoiced customers never told.

    python -m bench.soak [--orders 1000] [--fault-rate 0.05] [--seed 42]

Exits 1 if an invariant fails. Not part of ``make test`` (a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import Plan, arrival_order, make_plans, post_all
from local.testing import RuntimeProcess
from local_plugin.demo import call
from tests.guarantees.observe import DECIDED, outcome_names, replies_from_lines, sent_from_lines

ROOT = Path(__file__).resolve().parents[1]
# No web UI and no Invoke API on fixed ports: the soak may run next to `make run`.
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
    never_told: list[str]
    unanswered: list[str]  # decided, yet no target reply seen (doubled would be blind)
    failure_queue: int
    seconds: float
    parallelization: int
    duplicate_rate: float

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
            "zero customers told twice": not self.notified_twice,
            "zero invoiced customers never told": not self.never_told,
            "every decided order's target reply seen": not self.unanswered,
            "every order's view shows its outcome": not self.wrong,
        }


def _view(base: str, order_id: str) -> dict[str, Any]:
    for _ in range(50):
        try:
            status, body = call("GET", f"{base}/orders/{order_id}")
        except OSError:  # the busy runtime did not answer in time: ask again
            status, body = 0, None
        if status == 200:
            return dict(body)
        time.sleep(0.5)
    raise RuntimeError(f"could not read order {order_id}")


def _views(base: str, plans: list[Plan]) -> dict[str, dict[str, Any]]:
    with ThreadPoolExecutor(4) as pool:
        found = pool.map(lambda plan: _view(base, plan.order_id), plans)
        return {plan.order_id: view for plan, view in zip(plans, found, strict=True)}


def _wait_decided(base: str, plans: list[Plan], timeout: float) -> dict[str, dict[str, Any]]:
    """Every order's view, once all are decided (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    waiting = list(plans)
    views: dict[str, dict[str, Any]] = {}
    while waiting and time.monotonic() < deadline:
        views.update(_views(base, waiting))
        waiting = [p for p in waiting if views[p.order_id].get("status") not in DECIDED]
        if waiting:
            time.sleep(5)
    return views


def run(
    orders: int, fault_rate: float, seed: int, timeout_seconds: int, duplicate_rate: float = 0.1
) -> SoakResult:
    plans: list[Plan] = make_plans(orders, MIX, seed, "soak")
    posts = arrival_order(plans, duplicate_rate=0.10, seed=seed)
    runtime = RuntimeProcess(
        "--verbose",  # the app's logs: one "Order sent" line per notification
        "--env",
        f"ORDER_TIMEOUT_SECONDS={timeout_seconds}",
        "--schedule-every",
        "2",
        "--fault-rate",
        str(fault_rate),
        "--seed",
        str(seed),
        "--duplicate-rate",
        str(duplicate_rate),
        cwd=ROOT,
        env={"POWERTOOLS_METRICS_DISABLED": "true"},  # logs yes, metrics no
    )
    start = time.monotonic()
    try:
        base = runtime.wait_for(r"serving (http://\S+) \(stage local", 120).group(1)
        post_all(base, posts)
        _wait_decided(base, plans, timeout=timeout_seconds + 600)
        time.sleep(5)  # a redelivery that doubled something would show by now
        views = _views(base, plans)
    finally:
        runtime.stop(timeout=300)
    seconds = time.monotonic() - start
    sent = sent_from_lines(runtime.lines)
    outcomes: dict[str, set[str]] = {}
    for order, reply in replies_from_lines(runtime.lines):
        outcomes.setdefault(order, set()).update(outcome_names(reply))
    injected = runtime.last(r"faults injected: (\d+), calls forwarded: (\d+)")
    faults, forwarded = (int(injected.group(1)), int(injected.group(2))) if injected else (0, 0)
    queued = runtime.last(r"failure queue holds (\d+) record")
    factor = runtime.last(r"stream trigger aggregator: .*'ParallelizationFactor': (\d+)")
    statuses = {order: view.get("status", "?") for order, view in views.items()}
    return SoakResult(
        orders=orders,
        posts=len(posts),
        faults=faults,
        calls=faults + forwarded,
        expected=Counter(plan.expected for plan in plans),
        recorded=Counter(s for o, s in statuses.items() if "decidedAt" in views[o]),
        views=Counter(statuses.values()),
        lost=[p.order_id for p in plans if statuses[p.order_id] not in DECIDED],
        doubled=[order for order, names in outcomes.items() if len(names) > 1],
        wrong=[
            p.order_id
            for p in plans
            if statuses[p.order_id] != p.expected or "decidedAt" not in views[p.order_id]
        ],
        notified_twice=[order for order, n in sent.items() if n > 1],
        never_told=[o for o, s in statuses.items() if s == "invoiced" and not sent.get(o)],
        unanswered=[o for o, s in statuses.items() if s in DECIDED and o not in outcomes],
        failure_queue=int(queued.group(1)) if queued else 0,
        seconds=seconds,
        parallelization=int(factor.group(1)) if factor else 0,
        duplicate_rate=duplicate_rate,
    )


def report(result: SoakResult) -> str:
    lines = [
        (
            f"{result.orders} orders, {result.posts} posts (10% duplicates, shuffled), "
            "handlers in worker processes, "
            f"ParallelizationFactor {result.parallelization}, "
            f"{result.duplicate_rate:.0%} of batches and events delivered twice, "
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
            f"invoiced customers never told: {len(result.never_told)}, "
            f"records in the failure queue: {result.failure_queue}"
        ),
        "",
    ]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in result.invariants.items()]
    return "\n".join(lines)


def main() -> int:
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
