"""Counting AWS requests where they happen, and Lambda invocations per function.

:class:`Meter` hooks botocore's events on the clients the code under test uses:

* ``before-parameter-build`` keeps the call's parameters (``before-call`` only sees the
  serialized request);
* ``before-call`` reads the item a write is about to change (``GetItem`` through a
  separate, un-hooked client, so the size "before" is known);
* ``after-call`` counts the call and its units: reads by the size of what was read,
  writes by the larger of the item before and after (read back the same way), index
  writes by how the index entry changed, PutEvents entries and 64 KB chunks.

A Scan is charged for every item it read, not only what its filter returned: the meter
keeps a :class:`TableLedger` (every item's key and size, in the order moto scans) and
takes the page's items from ``ExclusiveStartKey`` to ``LastEvaluatedKey``, checking their
number against the page's ``ScannedCount``.

Lambda invocations are counted by wrapping each handler (:meth:`Meter.wrap`) or call
(:meth:`Meter.invoke`); AWS calls are attributed to the function running at the time.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench import sizing

HARNESS = "harness"
T = TypeVar("T")
Key = tuple[str, ...]
Handler = Callable[[dict[str, Any], Any], Any]
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem")


@dataclass
class FunctionUsage:
    """What one Lambda function (or the harness) did."""

    invocations: int = 0
    records_in: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    index_write_units: float = 0.0
    scanned_items: int = 0
    scanned_bytes: int = 0
    scan_pages: int = 0
    events_published: int = 0
    event_chunks: int = 0

    def add(self, other: FunctionUsage) -> None:
        self.invocations += other.invocations
        self.records_in += other.records_in
        self.calls.update(other.calls)
        self.read_units += other.read_units
        self.write_units += other.write_units
        self.index_write_units += other.index_write_units
        self.scanned_items += other.scanned_items
        self.scanned_bytes += other.scanned_bytes
        self.scan_pages += other.scan_pages
        self.events_published += other.events_published
        self.event_chunks += other.event_chunks


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index: its key attributes and projected attributes."""

    name: str
    keys: tuple[str, ...]
    projection: str
    included: tuple[str, ...] = ()

    @classmethod
    def from_request(cls, index: Mapping[str, Any]) -> IndexSpec:
        projection = index.get("Projection") or {}
        return cls(
            name=index["IndexName"],
            keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
            projection=projection.get("ProjectionType", "ALL"),
            included=tuple(projection.get("NonKeyAttributes") or ()),
        )


class TableLedger:
    """Every item of one table: key and size, in (hash key, range key) order."""

    def __init__(self, key_names: tuple[str, ...], indexes: Iterable[IndexSpec] = ()) -> None:
        self.key_names = key_names
        self.indexes = tuple(indexes)
        self._keys: list[Key] = []
        self._sizes: list[int] = []

    @classmethod
    def from_create_request(cls, request: Mapping[str, Any]) -> TableLedger:
        keys = tuple(
            k["AttributeName"]
            for k in sorted(request["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        )
        indexes = [IndexSpec.from_request(i) for i in request.get("GlobalSecondaryIndexes", [])]
        return cls(keys, indexes)

    def key_of(self, item: Mapping[str, Mapping[str, Any]]) -> Key:
        return tuple(str(next(iter(item[name].values()))) for name in self.key_names)

    def load(self, items: Iterable[Mapping[str, Mapping[str, Any]]]) -> None:
        """Bulk-load items written around the meter (the pre-filled table)."""
        pairs = {self.key_of(item): sizing.item_size(item) for item in items}
        for key, size in pairs.items():
            self.set(key, size)

    def set(self, key: Key, size: int | None) -> None:
        """Record an item's new size (``None``: the item is gone)."""
        index = bisect.bisect_left(self._keys, key)
        present = index < len(self._keys) and self._keys[index] == key
        if size is None:
            if present:
                del self._keys[index]
                del self._sizes[index]
        elif present:
            self._sizes[index] = size
        else:
            self._keys.insert(index, key)
            self._sizes.insert(index, size)

    def page(self, start: Key | None, end: Key | None) -> list[int]:
        """Sizes of the items after ``start`` up to and including ``end`` (None: open)."""
        low = 0 if start is None else bisect.bisect_right(self._keys, start)
        high = len(self._keys) if end is None else bisect.bisect_right(self._keys, end)
        return self._sizes[low:high]

    @property
    def sizes(self) -> list[int]:
        return list(self._sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes)

    def __len__(self) -> int:
        return len(self._keys)


def _index_entry(
    image: Mapping[str, Any] | None, spec: IndexSpec, table_keys: tuple[str, ...]
) -> dict[str, Any] | None:
    """The index entry an item has (None if it lacks an index key: sparse index)."""
    if not image or any(k not in image for k in spec.keys):
        return None
    names = set(spec.keys) | set(table_keys)
    if spec.projection == "ALL":
        names = set(image)
    elif spec.projection == "INCLUDE":
        names |= set(spec.included)
    return {k: image[k] for k in names if k in image}


def index_write_units(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    spec: IndexSpec,
    table_keys: tuple[str, ...],
) -> int:
    """Write units the index spends on one table write."""
    old = _index_entry(before, spec, table_keys)
    new = _index_entry(after, spec, table_keys)
    if old is None and new is None:
        return 0
    if old is None:
        return sizing.write_units(0, sizing.item_size(new))
    if new is None:
        return sizing.write_units(sizing.item_size(old), 0)
    if any(old[k] != new[k] for k in spec.keys):
        return sizing.write_units(sizing.item_size(old), 0) + sizing.write_units(
            0, sizing.item_size(new)
        )
    if old != new:
        return sizing.write_units(sizing.item_size(old), sizing.item_size(new))
    return 0


class Meter:
    """Counts the AWS calls and Lambda invocations of one run."""

    def __init__(self, raw_dynamodb: Any, ledgers: Mapping[str, TableLedger]) -> None:
        self._raw = raw_dynamodb
        self.ledgers = dict(ledgers)
        self.usage: defaultdict[str, FunctionUsage] = defaultdict(FunctionUsage)
        self.current = HARNESS
        self.published: list[dict[str, Any]] = []
        # Queries the aggregator made, per (invocation number, order id).
        self.queries_per_order_and_batch: Counter[tuple[int, str]] = Counter()
        # Entries of each PutEvents call, per aggregator invocation.
        self.put_events_per_invocation: defaultdict[int, list[int]] = defaultdict(list)
        self.scan_count_mismatches = 0
        self._invocation = 0

    # --- Lambda invocations -----------------------------------------------------------

    def invoke(self, function: str, call: Callable[[], T], records: int = 0) -> T:
        """Run ``call`` as one invocation of ``function``."""
        outer = self.current
        self.current = function
        self._invocation += 1
        usage = self.usage[function]
        usage.invocations += 1
        usage.records_in += records
        try:
            return call()
        finally:
            self.current = outer

    def wrap(self, function: str, handler: Handler) -> Handler:
        """``handler`` counted as invocations of ``function``."""

        def counted(event: dict[str, Any], context: Any) -> Any:
            records = len(event.get("Records") or []) if isinstance(event, dict) else 0
            return self.invoke(function, lambda: handler(event, context), records)

        return counted

    # --- botocore hooks ---------------------------------------------------------------

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.*.*", self._keep_params)
        events.register("before-call.*.*", self._before_call)
        events.register("after-call.*.*", self._after_call)

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS:
            params = context["bench_params"]
            table = params["TableName"]
            key = self._write_key(table, params)
            context["bench_before"] = (table, key, self._read_item(table, key))

    def _after_call(
        self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        usage = self.usage[self.current]
        service = model.service_model.service_name
        usage.calls[f"{service}.{model.name}"] += 1
        params: dict[str, Any] = context.get("bench_params", {})
        if service == "dynamodb":
            if model.name in WRITE_OPERATIONS:
                self._count_write(usage, context["bench_before"])
            elif model.name == "Query":
                self._count_query(usage, params, parsed)
            elif model.name == "Scan":
                self._count_scan(usage, params, parsed)
            elif model.name == "BatchGetItem":
                # Each item is charged on its own, rounded up to 4 KB (eventually consistent).
                for items in (parsed.get("Responses") or {}).values():
                    for item in items:
                        usage.read_units += sizing.read_units(sizing.item_size(item), False)
            elif model.name == "GetItem":
                consistent = bool(params.get("ConsistentRead"))
                usage.read_units += sizing.read_units(
                    sizing.item_size(parsed.get("Item")), consistent
                )
        elif service == "events" and model.name == "PutEvents":
            self._count_put_events(usage, params, parsed)

    # --- units ------------------------------------------------------------------------

    def _write_key(self, table: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if "Key" in params:
            return dict(params["Key"])
        names = self.ledgers[table].key_names
        return {name: params["Item"][name] for name in names}

    def _read_item(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._raw.get_item(
            TableName=table, Key=dict(key), ConsistentRead=True
        ).get("Item")
        return found

    def _count_write(self, usage: FunctionUsage, before_call: tuple[str, Any, Any]) -> None:
        table, key, before = before_call
        after = self._read_item(table, key)
        usage.write_units += sizing.write_units(sizing.item_size(before), sizing.item_size(after))
        ledger = self.ledgers[table]
        for spec in ledger.indexes:
            usage.index_write_units += index_write_units(before, after, spec, ledger.key_names)
        ledger.set(ledger.key_of(key), sizing.item_size(after) if after else None)

    def _count_query(
        self, usage: FunctionUsage, params: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> None:
        read = sum(sizing.item_size(item) for item in parsed.get("Items", []))
        usage.read_units += sizing.read_units(read, bool(params.get("ConsistentRead")))
        if self.current == "aggregator":
            values: dict[str, dict[str, Any]] = params.get("ExpressionAttributeValues") or {}
            first = next(iter(values.values()), {})
            partition = str(first.get("S", "?"))
            self.queries_per_order_and_batch[(self._invocation, partition)] += 1

    def _count_scan(
        self, usage: FunctionUsage, params: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> None:
        ledger = self.ledgers[params["TableName"]]
        start = params.get("ExclusiveStartKey")
        end = parsed.get("LastEvaluatedKey")
        sizes = ledger.page(
            ledger.key_of(start) if start else None, ledger.key_of(end) if end else None
        )
        if len(sizes) != parsed.get("ScannedCount"):
            self.scan_count_mismatches += 1
        usage.scan_pages += 1
        usage.scanned_items += len(sizes)
        usage.scanned_bytes += sum(sizes)
        usage.read_units += sizing.read_units(sum(sizes), bool(params.get("ConsistentRead")))

    def _count_put_events(
        self, usage: FunctionUsage, params: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> None:
        entries = list(params.get("Entries") or [])
        results = list(parsed.get("Entries") or [])
        if self.current == "aggregator":
            self.put_events_per_invocation[self._invocation].append(len(entries))
        for index, entry in enumerate(entries):
            result = results[index] if index < len(results) else {}
            if result.get("ErrorCode"):
                continue
            usage.events_published += 1
            usage.event_chunks += sizing.event_chunks(entry)
            self.published.append(dict(entry))

    # --- summaries --------------------------------------------------------------------

    def total(self, functions: Iterable[str] | None = None) -> FunctionUsage:
        """The usage of ``functions`` (default: every function, not the harness) summed."""
        names = [n for n in self.usage if n != HARNESS] if functions is None else functions
        total = FunctionUsage()
        for name in names:
            total.add(self.usage[name])
        return total

    @property
    def max_queries_per_order_and_batch(self) -> int:
        return max(self.queries_per_order_and_batch.values(), default=0)
