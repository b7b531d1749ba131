"""Stream records in, orders out: ``source_change``, ``group_by_order`` and the batch logic
of ``Aggregator.handle`` with an in-memory store and publisher (no AWS)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from chalicelib.aggregator import Aggregator, SourceChange, group_by_order, source_change
from chalicelib.config import Settings
from chalicelib.domain import INVOICED, PASSED, CheckResult, Order, Outcome
from chalicelib.observability import SERVICE
from chalicelib.publisher import Publisher
from chalicelib.store import EventStore, pending_shard
from tests.helpers import LogCollector

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
SETTINGS = Settings(order_timeout_seconds=600, pending_shards=4)


def _record(
    order_id: str,
    event_name: str = "In Stock",
    status: str = "passed",
    sequence: str | None = None,
    kind: str = "INSERT",
) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (NEW_IMAGE view)."""
    keys = {"OrderID": {"S": order_id}, "EventName": {"S": event_name}}
    return {
        "eventID": "1",
        "eventName": kind,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": keys,
            "NewImage": {**keys, "Status": {"S": status}},
            "SequenceNumber": sequence or f"{abs(hash((order_id, event_name))) % 10**9:021d}",
            "StreamViewType": "NEW_IMAGE",
        },
    }


def _batch(*order_ids: str) -> list[dict[str, Any]]:
    """One record per order id, sequence numbers 100, 101, … in that order."""
    return [_record(order, sequence=str(100 + n)) for n, order in enumerate(order_ids)]


# --- source_change -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["INSERT", "MODIFY"])
def test_inserts_and_modifies_of_source_events_are_changes(kind: str) -> None:
    change = source_change(_record("7", sequence="42", kind=kind), position=3)
    assert change == SourceChange(order_id="7", sequence_number="42", position=3)


def test_failed_results_are_changes_too() -> None:
    assert source_change(_record("7", status="failed"), 0) is not None


def test_removes_are_not_changes() -> None:
    record = _record("7", kind="REMOVE")
    del record["dynamodb"]["NewImage"]
    assert source_change(record, 0) is None


def test_removes_are_not_changes_even_with_an_image() -> None:
    assert source_change(_record("7", kind="REMOVE"), 0) is None


@pytest.mark.parametrize("event_name", ["#order", "#anything"])
def test_the_apps_own_order_records_are_not_changes(event_name: str) -> None:
    assert source_change(_record("7", event_name=event_name), 0) is None


@pytest.mark.parametrize("status", ["", "PASSED", "pending", "approved", "invoiced"])
def test_items_whose_status_is_not_a_check_status_are_not_changes(status: str) -> None:
    assert source_change(_record("7", status=status), 0) is None


def _without(record: dict[str, Any], *path: str) -> dict[str, Any]:
    target = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return record


@pytest.mark.parametrize(
    "path",
    [
        ("eventName",),
        ("dynamodb",),
        ("dynamodb", "Keys"),
        ("dynamodb", "Keys", "OrderID"),
        ("dynamodb", "Keys", "EventName"),
        ("dynamodb", "NewImage"),
        ("dynamodb", "NewImage", "Status"),
        ("dynamodb", "SequenceNumber"),
    ],
)
def test_records_missing_a_part_are_not_changes(path: tuple[str, ...]) -> None:
    assert source_change(_without(_record("7"), *path), 0) is None


@pytest.mark.parametrize(
    "patch",
    [
        {"dynamodb": None},
        {"dynamodb": {"Keys": None}},
        {"dynamodb": {"Keys": {"OrderID": None, "EventName": {"S": "In Stock"}}}},
        {"dynamodb": []},
        {"eventName": None},
        {"eventName": ["INSERT"]},
    ],
)
def test_records_with_null_or_empty_parts_are_not_changes(patch: dict[str, Any]) -> None:
    assert source_change({**_record("7"), **patch}, 0) is None


def test_status_stored_as_a_number_is_not_a_change() -> None:
    record = _record("7")
    record["dynamodb"]["NewImage"]["Status"] = {"N": "1"}
    assert source_change(record, 0) is None


def test_keys_of_another_type_are_not_changes() -> None:
    record = _record("7")
    record["dynamodb"]["Keys"]["OrderID"] = {"N": "7"}
    assert source_change(record, 0) is None


def test_empty_order_id_or_event_name_is_not_a_change() -> None:
    assert source_change(_record(""), 0) is None
    assert source_change(_record("7", event_name=""), 0) is None


def test_sequence_number_must_be_a_string() -> None:
    record = _record("7")
    record["dynamodb"]["SequenceNumber"] = 42
    assert source_change(record, 0) is None


@pytest.mark.parametrize(
    "patch",
    [
        {"dynamodb": "garbage"},
        {"dynamodb": {"Keys": ["OrderID"], "SequenceNumber": "1"}},
        {"dynamodb": {"Keys": {"OrderID": "7", "EventName": "x"}, "SequenceNumber": "1"}},
        {
            "dynamodb": {
                "Keys": {"OrderID": {"S": 7}, "EventName": {"S": "In Stock"}},
                "NewImage": {"Status": {"S": "passed"}},
                "SequenceNumber": "1",
            }
        },
        {
            "dynamodb": {
                "Keys": {"OrderID": {"S": "7"}, "EventName": {"S": 5}},
                "NewImage": {"Status": {"S": "passed"}},
                "SequenceNumber": "1",
            }
        },
    ],
)
def test_records_with_parts_of_the_wrong_type_are_not_changes(patch: dict[str, Any]) -> None:
    assert source_change({**_record("7"), **patch}, 0) is None


# --- group_by_order ------------------------------------------------------------------


def test_changes_are_grouped_per_order_in_order_of_first_appearance() -> None:
    records = [
        _record("b", "In Stock", sequence="1"),
        _record("a", "In Stock", sequence="2"),
        _record("b", "Account Check", sequence="3"),
        _record("c", "In Stock", sequence="4"),
        _record("a", "Account Check", sequence="5"),
    ]
    groups = group_by_order(records)
    assert [g.order_id for g in groups] == ["b", "a", "c"]
    assert [[c.sequence_number for c in g.changes] for g in groups] == [
        ["1", "3"],
        ["2", "5"],
        ["4"],
    ]
    assert [(g.first, g.last) for g in groups] == [(0, 2), (1, 4), (3, 3)]


def test_skipped_records_keep_the_positions_of_the_others() -> None:
    order_record = _record("a", event_name="#order", sequence="1")
    removed = _record("a", sequence="2", kind="REMOVE")
    records = [order_record, removed, _record("a", sequence="3"), {"eventName": "INSERT"}]
    groups = group_by_order(records)
    assert len(groups) == 1
    assert [(c.sequence_number, c.position) for c in groups[0].changes] == [("3", 2)]


def test_a_batch_of_nothing_but_foreign_records_has_no_orders() -> None:
    records = [
        _record("a", event_name="#order"),
        _record("a", kind="REMOVE"),
        _record("b", status="red"),
        {"eventName": "INSERT", "dynamodb": {"Keys": {}}},
        {},
    ]
    assert group_by_order(records) == []


@pytest.fixture
def app_log() -> Iterator[list[logging.LogRecord]]:
    """Every record the app's logger emits during the test."""
    handler = LogCollector()
    target = logging.getLogger(SERVICE)
    target.addHandler(handler)
    yield handler.records
    target.removeHandler(handler)


def test_every_skipped_record_is_logged_with_its_order_id(
    app_log: list[logging.LogRecord],
) -> None:
    group_by_order([_record("x1", event_name="#order"), _record("x2", kind="REMOVE"), {}])
    skipped = [r for r in app_log if r.getMessage().startswith("skipped a record")]
    assert [getattr(r, "order_id", None) for r in skipped] == ["x1", "x2", None]
    assert [getattr(r, "event_name", None) for r in skipped] == ["INSERT", "REMOVE", None]


# --- Aggregator.handle with in-memory fakes ------------------------------------------


class FakeStore(EventStore):
    """Orders in memory; ``load_order`` raises for the ids in ``broken``."""

    def __init__(self, orders: Mapping[str, Order], broken: set[str] | None = None) -> None:
        super().__init__(cast(Any, None), "unused")
        self.orders = dict(orders)
        self.broken = broken or set()
        self.loads: list[str] = []
        self.buckets: list[tuple[str, dict[str, datetime]]] = []
        self.bucket_fails = False
        self.events: list[str] = []

    def load_order(self, order_id: str) -> Order | None:
        self.loads.append(order_id)
        if order_id in self.broken:
            raise RuntimeError(f"injected failure reading {order_id}")
        return self.orders.get(order_id)

    def put_bucket(self, shard: str, deadlines: Mapping[str, datetime], bucket_id: str) -> str:
        self.events.append("bucket")
        if self.bucket_fails:
            raise RuntimeError("injected failure writing a deadline bucket")
        self.buckets.append((shard, dict(deadlines)))
        return bucket_id


class FakePublisher(Publisher):
    """Records calls; entries of the orders in ``failing`` are reported as failed."""

    def __init__(self, failing: set[str] | None = None) -> None:
        super().__init__(cast(Any, None), attempts=1, sleep=lambda _: None)
        self.failing = failing or set()
        self.calls: list[list[str]] = []

    def _publish_call(self, entries: Sequence[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
        orders = [json.loads(entry["Detail"])["OrderID"] for entry in entries]
        self.calls.append(orders)
        return [i for i, order in enumerate(orders) if order in self.failing], {}

    @property
    def published(self) -> list[str]:
        return [o for call in self.calls for o in call if o not in self.failing]


def _pending(order_id: str, deadline: datetime | None = NOW) -> Order:
    result = CheckResult("In Stock", PASSED, NOW)
    return Order(order_id, {"In Stock": result}, deadline=deadline)


def _handle(records: list[dict[str, Any]], store: FakeStore, publisher: FakePublisher) -> list[str]:
    response = Aggregator(store, publisher, SETTINGS, now=lambda: NOW).handle(records)
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_each_order_is_read_once_and_published_once_per_batch() -> None:
    records = [_record("a", "In Stock", sequence="1"), _record("a", "Account Check", "passed", "2")]
    store = FakeStore({"a": _pending("a")})
    publisher = FakePublisher()
    assert _handle(records, store, publisher) == []
    assert store.loads == ["a"]
    assert publisher.calls == [["a"]]


def test_orders_are_published_in_order_of_their_last_record() -> None:
    records = _batch("a", "b", "a", "c")
    store = FakeStore({o: _pending(o) for o in "abc"})
    publisher = FakePublisher()
    _handle(records, store, publisher)
    assert publisher.calls == [["b", "a", "c"]]


def test_entries_go_out_in_calls_of_at_most_ten() -> None:
    ids = [f"o{n}" for n in range(23)]
    publisher = FakePublisher()
    _handle(_batch(*ids), FakeStore({o: _pending(o) for o in ids}), publisher)
    assert [len(call) for call in publisher.calls] == [10, 10, 3]
    assert publisher.published == ids


def test_an_order_that_cannot_be_read_is_reported_by_its_last_record() -> None:
    records = _batch("a", "x", "b", "x", "c")
    store = FakeStore({o: _pending(o) for o in "abcx"}, broken={"x"})
    publisher = FakePublisher()
    assert _handle(records, store, publisher) == ["103"]
    # Nothing is withheld: "c" (after the checkpoint) is published now and may be again
    # on Lambda's retry from "103"; the targets are idempotent.
    assert publisher.published == ["a", "b", "c"]


def test_orders_after_a_failed_read_are_published_now_and_again_on_the_retry() -> None:
    records = _batch("x", "a", "b")
    store = FakeStore({o: _pending(o) for o in "abx"}, broken={"x"})
    publisher = FakePublisher()
    assert _handle(records, store, publisher) == ["100"]
    assert publisher.published == ["a", "b"]
    # Lambda retries every record from the lowest reported one.
    store.broken.clear()
    assert _handle(records, store, publisher) == []
    assert publisher.published == ["a", "b", "x", "a", "b"]


def test_every_order_is_read_even_when_earlier_ones_fail() -> None:
    records = _batch("y", "a", "x", "b")
    store = FakeStore({o: _pending(o) for o in "abxy"}, broken={"x", "y"})
    publisher = FakePublisher()
    assert _handle(records, store, publisher) == ["100", "102"]
    assert store.loads == ["y", "a", "x", "b"]
    assert publisher.published == ["a", "b"]


def test_orders_before_an_unreadable_one_are_still_published() -> None:
    store = FakeStore({o: _pending(o) for o in "abx"}, broken={"x"})
    publisher = FakePublisher()
    assert _handle(_batch("a", "b", "x"), store, publisher) == ["102"]
    assert publisher.published == ["a", "b"]


def test_entries_that_fail_to_publish_are_reported_and_the_rest_go_out() -> None:
    ids = [f"o{n:02d}" for n in range(25)]
    publisher = FakePublisher(failing={"o12"})
    store = FakeStore({o: _pending(o) for o in ids})
    failures = _handle(_batch(*ids), store, publisher)
    assert failures == [str(100 + 12)]
    assert len(publisher.calls) == 3
    assert publisher.published == [o for o in ids if o != "o12"]


def test_final_orders_are_not_published() -> None:
    final = Order("a", _pending("a").results, outcome=Outcome(INVOICED, NOW))
    store = FakeStore({"a": final, "b": _pending("b")})
    publisher = FakePublisher()
    assert _handle(_batch("a", "b"), store, publisher) == []
    assert publisher.published == ["b"]
    assert [list(listed) for _, listed in store.buckets] == [["b"]]


def test_orders_with_nothing_stored_are_neither_published_nor_failed() -> None:
    publisher = FakePublisher()
    assert _handle(_batch("gone"), FakeStore({}), publisher) == []
    assert publisher.calls == []


def test_every_published_order_is_listed_with_its_deadline_in_one_bucket_first() -> None:
    later = NOW + timedelta(seconds=600)
    store = FakeStore({"new": _pending("new", deadline=later), "old": _pending("old")})
    publisher = FakePublisher()

    def publish_call(entries: Sequence[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
        store.events.append("publish")
        return FakePublisher._publish_call(publisher, entries)

    publisher._publish_call = publish_call  # type: ignore[method-assign]
    _handle(_batch("new", "old"), store, publisher)
    assert store.events == ["bucket", "publish"]
    [(shard, listed)] = store.buckets
    assert listed == {"new": later, "old": NOW}
    assert shard in {pending_shard(f"order-{n}", 4) for n in range(200)}


def test_a_failed_bucket_write_publishes_nothing_and_reports_every_order() -> None:
    store = FakeStore({o: _pending(o) for o in "ab"})
    store.bucket_fails = True
    publisher = FakePublisher()
    assert _handle(_batch("a", "b"), store, publisher) == ["100", "101"]
    assert publisher.calls == []


def test_a_batch_of_only_foreign_records_touches_nothing() -> None:
    store = FakeStore({})
    publisher = FakePublisher()
    records = [_record("a", event_name="#order"), _record("b", kind="REMOVE")]
    assert _handle(records, store, publisher) == []
    assert store.loads == []
    assert publisher.calls == []


def test_pending_shard_is_stable_and_within_range() -> None:
    shards = {pending_shard(f"order-{n}", 4) for n in range(200)}
    assert shards == {"pending-0", "pending-1", "pending-2", "pending-3"}
    assert pending_shard("7", 4) == pending_shard("7", 4)
    assert pending_shard("7", 1) == "pending-0"
