"""Load for the local runtime: plans of orders, concurrent posting, outcome tracking.

Used by :mod:`bench.local_pipeline` (throughput and latency) and :mod:`bench.soak`
(invariants under duplicates, reordering and injected faults). Both run the runtime in
this process so they can watch outcomes being recorded without polling.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.runtime import LocalRuntime, Printer, RuntimeOptions

CHECKS = ("Account Check", "In Stock")
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Post:
    order_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """One order: the results its sources will send and the outcome they must give."""

    order_id: str
    posts: tuple[Post, ...]
    expected: str  # invoiced | rejected | timed-out


def plan_order(order_id: str, kind: str, index: int) -> Plan:
    at = (BASE_TIME + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bodies = [{"name": name, "status": "passed", "occurredAt": at} for name in CHECKS]
    expected = "invoiced"
    if kind == "fail":
        bodies[1] = {**bodies[1], "status": "failed", "reason": "out of stock"}
        expected = "rejected"
    elif kind == "missing":
        bodies = bodies[:1]
        expected = "timed-out"
    return Plan(order_id, tuple(Post(order_id, b) for b in bodies), expected)


def make_plans(count: int, mix: dict[str, float], seed: int, prefix: str) -> list[Plan]:
    """``count`` orders whose kinds (``pass``/``fail``/``missing``) follow ``mix``."""
    rng = random.Random(seed)
    kinds = rng.choices(list(mix), weights=list(mix.values()), k=count)
    return [plan_order(f"{prefix}-{n:05d}", kind, n) for n, kind in enumerate(kinds)]


def arrival_order(
    plans: list[Plan], duplicate_rate: float, seed: int, block: int = 100
) -> list[Post]:
    """Every post (plus ``duplicate_rate`` duplicates), shuffled within blocks of orders."""
    rng = random.Random(seed)
    posts: list[Post] = []
    for start in range(0, len(plans), block):
        chunk = [p for plan in plans[start : start + block] for p in plan.posts]
        chunk += [p for p in chunk if rng.random() < duplicate_rate]
        rng.shuffle(chunk)
        posts.extend(chunk)
    return posts


def send(base: str, post: Post, attempts: int = 20) -> tuple[int, float]:
    """POST one result like a well-behaved source: retry 5xx and connection errors.
    Returns the final status and the time the answer came."""
    data = json.dumps(post.body).encode()
    for attempt in range(attempts):
        request = urllib.request.Request(
            f"{base}/orders/{post.order_id}/events",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, time.monotonic()
        except urllib.error.HTTPError as err:
            if err.code < 500:
                return err.code, time.monotonic()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(min(0.05 * 2**attempt, 1.0))
    raise RuntimeError(f"gave up posting {post}")


@dataclass
class Outcomes:
    """What the store recorded, as it happened (patched into the running app)."""

    created: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    notified: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kinds(self) -> Counter[str]:
        with self.lock:
            return Counter(entries[0][0] for entries in self.created.values() if entries)

    def decided(self) -> int:
        with self.lock:
            return sum(1 for entries in self.created.values() if entries)


@contextmanager
def watching_outcomes() -> Iterator[Outcomes]:
    """Record every outcome the app creates and every "Order sent" it sends."""
    from chalicelib.outcomes import LogNotifier
    from chalicelib.store import EventStore

    outcomes = Outcomes()
    close_order, order_sent = EventStore.close_order, LogNotifier.order_sent

    def recording_close(self: EventStore, order_id: str, outcome: Any, notify: Any = None) -> Any:
        stored, created = close_order(self, order_id, outcome, notify)
        if created:
            with outcomes.lock:
                outcomes.created[order_id].append((stored.kind, time.monotonic()))
        return stored, created

    def recording_sent(
        self: LogNotifier, order_id: str, invoice: dict[str, Any], idempotency_key: str
    ) -> None:
        with outcomes.lock:
            outcomes.notified[order_id] += 1
        order_sent(self, order_id, invoice, idempotency_key)

    EventStore.close_order = recording_close  # type: ignore[method-assign]
    LogNotifier.order_sent = recording_sent  # type: ignore[method-assign]
    try:
        yield outcomes
    finally:
        EventStore.close_order = close_order  # type: ignore[method-assign]
        LogNotifier.order_sent = order_sent  # type: ignore[method-assign]


@contextmanager
def running(options: RuntimeOptions, quiet: bool = True) -> Iterator[LocalRuntime]:
    """The runtime in this process; hop lines are dropped when ``quiet``."""
    runtime = LocalRuntime(options, Printer(lambda line: None) if quiet else None)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def post_all(
    base: str,
    posts: list[Post],
    workers: int = 8,
    per_second: float | None = None,
    cpu: list[float] | None = None,
) -> dict[str, float]:
    """Send every post with ``workers`` threads, as fast as they go or at ``per_second``
    posts a second; return each order's last answer time. ``cpu`` gets the CPU seconds
    the sending threads spent (the load generator's own share of its process)."""
    last: dict[str, float] = {}
    lock = threading.Lock()
    start = time.monotonic()

    def one(numbered: tuple[int, Post]) -> None:
        index, post = numbered
        if per_second:
            time.sleep(max(0.0, start + index / per_second - time.monotonic()))
        began = time.thread_time()
        _, answered = send(base, post)
        spent = time.thread_time() - began
        with lock:
            last[post.order_id] = max(last.get(post.order_id, 0.0), answered)
            if cpu is not None:
                cpu.append(spent)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, enumerate(posts)))
    return last


def wait_for(outcomes: Outcomes, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while outcomes.decided() < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
