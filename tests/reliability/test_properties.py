"""Property tests: at-least-once delivery, in any shape, ends where the clean run ends.

Over the HTTP API and the whole pipeline (one moto account for the module, a fresh pair
of order ids per example): any mix of duplicate posts, reordered posts, throttled or
answer-lost writes, failed reads, failed ``PutEvents`` entries, failed outcome writes,
replayed stream batches and duplicate EventBridge deliveries leaves the same stored
result per check, the same order status and the same number of outcome records (and
notifications) as posting each result once, in order, without faults.

Over the aggregation logic alone (no AWS): Lambda's partial-batch retries of any stream
layout publish every order, and publish it only once when only reads fail; the
publisher sends every entry until it is accepted and never again after.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.aggregator import Aggregator
from chalicelib.config import Settings
from chalicelib.domain import FAILED, PASSED, CheckResult, Order, format_time
from chalicelib.publisher import Publisher
from chalicelib.store import EventStore
from tests.reliability.faults import (
    Clock,
    Harness,
    Ledger,
    closing,
    entry_for_order,
    for_order,
    outcome_records,
    shared_harness,
)

CHECKS = ("Account Check", "In Stock")
STATUSES = (PASSED, FAILED)
REASONS = (None, "sold out", "credit limit")
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=1)
OVER_HTTP = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PURE = settings(max_examples=50, deadline=None)
_ids = itertools.count()


@dataclass(frozen=True)
class Version:
    """One result a source sends: a check's status (and reason) at a minute after T0."""

    check: str
    minute: int
    status: str
    reason: str | None

    def fields(self, timed: bool = True) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if timed:
            extra["occurredAt"] = format_time(T0 + timedelta(minutes=self.minute))
        if self.reason:
            extra["reason"] = self.reason
        return extra


@dataclass
class World:
    h: Harness
    clock: Clock
    ledger: Ledger

    def __repr__(self) -> str:
        return "World(...)"

    def fresh(self, name: str) -> str:
        self.h.db.clear()
        self.h.bus.clear()
        return f"{name}-{next(_ids)}"

    def post(self, order_id: str, version: Version, timed: bool = True) -> list[int]:
        codes = self.h.post_until_answered(
            order_id, version.check, version.status, **version.fields(timed)
        )
        assert codes[-1] in (200, 201), codes
        return codes

    def state(self, order_id: str) -> dict[str, Any]:
        """What must not depend on how the results were delivered."""
        view = self.h.view(order_id)
        problem = view.get("problem") or {}
        return {
            "events": {
                name: {k: v for k, v in event.items() if k != "late"}
                for name, event in view["events"].items()
            },
            "status": view["status"],
            "problem": problem.get("reason"),
            "invoiced": "invoice" in view,
            "outcome records": len(outcome_records(self.h.aws, order_id)),
            "outcomes created": len(self.ledger.created_for(order_id)),
            "customers told": len(self.ledger.notified_for(order_id)),
        }

    def unsettled(self, order_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.h.pipeline.failures.entries
            if (e["record"].get("dynamodb") or {}).get("Keys", {}).get("OrderID", {}).get("S")
            == order_id
        ]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        clock = Clock(NOW).install(monkeypatch)
        ledger = Ledger().install(monkeypatch)
        with shared_harness() as h:
            yield World(h, clock, ledger)


# --- strategies ----------------------------------------------------------------------


# Passed twice as likely as failed, so that many examples end invoiced, not rejected.
_status = st.sampled_from((PASSED, PASSED, FAILED))


@st.composite
def _results(draw: st.DrawFn) -> list[Version]:
    """0-3 distinct results per check, at least one in all."""
    results = [
        Version(check, minute, status, reason)
        for check in CHECKS
        for minute, status, reason in draw(
            st.lists(
                st.tuples(st.integers(0, 4), _status, st.sampled_from(REASONS)),
                max_size=3,
                unique=True,
            )
        )
    ]
    if not results:
        results.append(Version(draw(st.sampled_from(CHECKS)), 0, draw(_status), None))
    return results


_api_fault = st.sampled_from([None, None, "throttled", "answer lost"])


@dataclass(frozen=True)
class Delivery:
    """How one set of results reaches the app, and what goes wrong on the way."""

    results: list[Version]
    posts: list[tuple[Version, str | None]]
    failed_reads: int
    failed_entries: int
    failed_outcome_writes: int
    replay_stream: bool
    redeliver_events: bool


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    results = draw(_results())
    posts = list(draw(st.permutations(results)))
    for duplicate in draw(st.lists(st.sampled_from(results), max_size=3)):
        posts.insert(draw(st.integers(0, len(posts))), duplicate)
    return Delivery(
        results=results,
        posts=[(version, draw(_api_fault)) for version in posts],
        failed_reads=draw(st.integers(0, 1)),
        failed_entries=draw(st.integers(0, 6)),
        failed_outcome_writes=draw(st.integers(0, 2)),
        replay_stream=draw(st.booleans()),
        redeliver_events=draw(st.booleans()),
    )


def _arm_api_fault(world: World, order_id: str, fault: str | None) -> None:
    if fault is not None:
        world.h.db.fail("PutItem", times=1, when=for_order(order_id), after=fault == "answer lost")


def _replay(world: World, order_id: str) -> None:
    """Lambda delivers the order's stream records again, in one batch."""
    records = [
        r for r in world.h.stream_records() if r["dynamodb"]["Keys"]["OrderID"]["S"] == order_id
    ]
    world.h.aggregate(records)


def _clean_run(world: World, results: Sequence[Version], timed: bool = True) -> str:
    order_id = world.fresh("clean")
    for version in sorted(results, key=lambda v: (v.minute, v.check, v.status, v.reason or "")):
        world.post(order_id, version, timed)
    world.h.run()
    return order_id


# --- over the HTTP API and the pipeline ----------------------------------------------


@OVER_HTTP
@given(delivery=deliveries())
def test_any_delivery_of_the_results_ends_like_the_clean_run(
    world: World, delivery: Delivery
) -> None:
    h = world.h
    order_id = world.fresh("faulty")
    for version, fault in delivery.posts:
        _arm_api_fault(world, order_id, fault)
        world.post(order_id, version)
    reads = h.db.fail("Query", times=delivery.failed_reads, when=for_order(order_id))
    entries = h.bus.fail_entries(times=delivery.failed_entries, when=entry_for_order(order_id))
    writes = h.db.fail("UpdateItem", times=delivery.failed_outcome_writes, when=closing(order_id))
    h.run()
    assert (reads.injected, entries.injected) == (delivery.failed_reads, delivery.failed_entries)
    if delivery.replay_stream:
        _replay(world, order_id)
        h.run()
    if delivery.redeliver_events:
        h.redeliver(h.events_for(order_id))

    faulty = world.state(order_id)
    assert world.unsettled(order_id) == []
    assert faulty == world.state(_clean_run(world, delivery.results))
    # The stored result of each check is its latest one.
    for check in {v.check for v in delivery.results}:
        latest = max(v.minute for v in delivery.results if v.check == check)
        occurred = format_time(T0 + timedelta(minutes=latest))
        assert faulty["events"][check]["occurredAt"] == occurred
    assert faulty["outcome records"] == (0 if faulty["status"] == "pending" else 1)
    assert faulty["outcomes created"] == faulty["outcome records"]
    assert faulty["customers told"] == (1 if faulty["invoiced"] else 0)
    assert writes.injected == (delivery.failed_outcome_writes if faulty["outcome records"] else 0)


@dataclass(frozen=True)
class Interleaving:
    """Each reported check has one content; steps mix posts with pipeline work."""

    contents: dict[str, tuple[str, str | None]]
    timed: bool
    steps: list[str]


_WORK = ("run", "replay", "redeliver")
_FAULTS = ("fail read", "fail entry", "fail outcome write")


@st.composite
def interleavings(draw: st.DrawFn) -> Interleaving:
    reported = draw(st.lists(st.sampled_from(CHECKS), min_size=1, max_size=2, unique=True))
    contents = {check: (draw(_status), draw(st.sampled_from(REASONS))) for check in reported}
    posts = [check for check in reported for _ in range(draw(st.integers(1, 3)))]
    work = draw(st.lists(st.sampled_from(_WORK), max_size=4))
    # Each fault at most once: transient, so the bounded retries always get through.
    faults = draw(st.lists(st.sampled_from(_FAULTS), unique=True))
    steps = draw(st.permutations(posts + work + faults))
    return Interleaving(contents, draw(st.booleans()), list(steps))


@OVER_HTTP
@given(plan=interleavings())
def test_pipeline_work_interleaved_with_duplicate_posts_ends_like_the_clean_run(
    world: World, plan: Interleaving
) -> None:
    h = world.h
    versions = {
        check: Version(check, 0, status, reason)
        for check, (status, reason) in plan.contents.items()
    }
    order_id = world.fresh("interleaved")
    for step in plan.steps:
        if step in versions:
            world.post(order_id, versions[step], plan.timed)
        elif step == "run":
            h.run()
        elif step == "replay":
            _replay(world, order_id)
        elif step == "redeliver":
            h.redeliver(h.events_for(order_id))
        elif step == "fail read":
            h.db.fail("Query", times=1, when=for_order(order_id))
        elif step == "fail entry":
            h.bus.fail_entries(times=2, when=entry_for_order(order_id))
        elif step == "fail outcome write":
            h.db.fail("UpdateItem", times=1, when=closing(order_id))
    h.db.clear()
    h.bus.clear()
    h.run()
    faulty = world.state(order_id)
    assert world.unsettled(order_id) == []
    assert faulty == world.state(_clean_run(world, list(versions.values()), plan.timed))
    assert faulty["outcome records"] == (0 if faulty["status"] == "pending" else 1)
    assert faulty["customers told"] == (1 if faulty["invoiced"] else 0)


# --- the aggregation logic alone -----------------------------------------------------


class FlakyStore(EventStore):
    """Every order pending; reading an order fails as often as ``failures`` says."""

    def __init__(self, failures: dict[str, int]) -> None:
        super().__init__(cast(Any, None), "unused")
        self.failures = dict(failures)

    def load_order(self, order_id: str) -> Order | None:
        if self.failures.get(order_id, 0) > 0:
            self.failures[order_id] -= 1
            raise RuntimeError(f"injected read failure for {order_id}")
        result = CheckResult("In Stock", PASSED, NOW)
        return Order(order_id, {"In Stock": result}, deadline=NOW)

    def put_bucket(self, shard: str, deadlines: Mapping[str, datetime], bucket_id: str) -> str:
        return bucket_id


class FlakyPublisher(Publisher):
    """Entries of an order fail (after all attempts) as often as ``failures`` says."""

    def __init__(self, failures: dict[str, int]) -> None:
        super().__init__(cast(Any, None), attempts=1, sleep=lambda _: None)
        self.failures = dict(failures)
        self.published: list[str] = []

    def _publish_call(self, entries: Sequence[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
        failed = []
        for index, entry in enumerate(entries):
            order_id = json.loads(entry["Detail"])["OrderID"]
            if self.failures.get(order_id, 0) > 0:
                self.failures[order_id] -= 1
                failed.append(index)
            else:
                self.published.append(order_id)
        return failed, {}


def _records(layout: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "eventName": "INSERT",
            "dynamodb": {
                "Keys": {"OrderID": {"S": order_id}, "EventName": {"S": "In Stock"}},
                "NewImage": {"Status": {"S": "passed"}},
                "SequenceNumber": f"{n:021d}",
            },
        }
        for n, order_id in enumerate(layout)
    ]


_orders = st.sampled_from("abcdefghijklmno")


@PURE
@given(
    layout=st.lists(_orders, min_size=1, max_size=60),
    read_failures=st.dictionaries(_orders, st.integers(1, 3)),
    publish_failures=st.dictionaries(_orders, st.integers(1, 3)),
)
def test_lambda_retries_of_any_batch_publish_every_order_and_withhold_none(
    layout: list[str], read_failures: dict[str, int], publish_failures: dict[str, int]
) -> None:
    store, publisher = FlakyStore(read_failures), FlakyPublisher(publish_failures)
    aggregator = Aggregator(store, publisher, Settings(), now=lambda: NOW)
    pending = _records(layout)
    for _ in range(100):
        published_before = len(publisher.published)
        response = aggregator.handle(pending)
        failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
        if not failed:
            break
        numbers = [r["dynamodb"]["SequenceNumber"] for r in pending]
        positions = [numbers.index(f) for f in failed]
        owners = [pending[p]["dynamodb"]["Keys"]["OrderID"]["S"] for p in positions]
        # Each reported record is the last record of an order that was not published.
        for position, owner in zip(positions, owners, strict=True):
            later = [r["dynamodb"]["Keys"]["OrderID"]["S"] for r in pending[position + 1 :]]
            assert owner not in later
            assert owner not in publisher.published[published_before:]
        # Every other order of the batch went out in this very call: none is withheld
        # for the retry (which Lambda may discard when its attempts run out).
        in_batch = {r["dynamodb"]["Keys"]["OrderID"]["S"] for r in pending}
        assert set(publisher.published[published_before:]) == in_batch - set(owners)
        # Lambda checkpoints before the lowest failure and delivers the rest again.
        pending = pending[min(positions) :]
    else:
        pytest.fail("the batch never settled")
    assert set(publisher.published) == set(layout)
    if not publish_failures and not read_failures:
        assert sorted(publisher.published) == sorted(set(layout))


class ScriptedEvents:
    """``put_events`` whose entries fail per ``script[detail]`` attempts, then succeed."""

    def __init__(self, script: dict[str, int]) -> None:
        self.script = dict(script)
        self.sent: list[str] = []

    def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for entry in Entries:
            detail = entry["Detail"]
            self.sent.append(detail)
            if self.script.get(detail, 0) > 0:
                self.script[detail] -= 1
                results.append({"ErrorCode": "InternalFailure"})
            else:
                results.append({"EventId": detail})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


@PURE
@given(
    failures=st.lists(st.integers(0, 6), min_size=1, max_size=10),
    attempts=st.integers(1, 5),
)
def test_publisher_sends_each_entry_until_accepted_and_never_after(
    failures: list[int], attempts: int
) -> None:
    entries = [{"Detail": f"e{i}"} for i in range(len(failures))]
    events = ScriptedEvents({f"e{i}": n for i, n in enumerate(failures)})
    publisher = Publisher(cast(Any, events), attempts=attempts, sleep=lambda _: None)
    still_failed = publisher.publish(entries).failed
    assert still_failed == [i for i, n in enumerate(failures) if n >= attempts]
    for i, n in enumerate(failures):
        assert events.sent.count(f"e{i}") == min(n + 1, attempts)
