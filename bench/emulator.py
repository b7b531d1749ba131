"""Emulator speed: moto 5's DynamoDB is O(table) per Query and slow per Scanned item.

moto 5.2.1 (emulator time only; AWS reads one partition for a Query):

* ``Table.all_items`` sorts every item of the table with Python-level comparisons, and
  ``Table.query`` calls it whatever the partition: about 1 s per Query at 30,000 items;
* ``Table.scan`` deep-copies every item it reads before applying the FilterExpression.

:func:`faster_moto` (bench only, undone on exit) sorts by the keys' plain values (what
moto's own comparison compares for string and number keys), reuses that order while the
table holds the same item objects, and lets a table Scan hand moto's read-only response
serializer the stored items instead of deep copies. Answers are identical: the cost runs
check every Scan page's ``ScannedCount`` against the meter's own ledger, and the
per-order counts are the same with and without it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

_CACHE = "_bench_sorted_items"


def _plain_key(item: Any) -> tuple[Any, Any] | None:
    hash_key, range_key = item.hash_key, item.range_key
    if hash_key.type not in ("S", "N") or (
        range_key is not None and range_key.type not in ("S", "N")
    ):
        return None
    return (hash_key.cast_value, range_key.cast_value if range_key is not None else "")


@contextlib.contextmanager
def faster_moto() -> Iterator[None]:
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.table import Table

    original_all_items = Table.all_items
    original_scan = Table.scan
    scan_signature = inspect.signature(original_scan)
    no_copy = SimpleNamespace(deepcopy=lambda value, memo=None: value)
    namespace = table_module.__dict__
    real_copy = namespace["copy"]

    def all_items(self: Any) -> list[Any]:
        current: list[Any] = []
        for bucket in self.items.values():
            if self.range_key_attr:
                current.extend(bucket.values())
            else:
                current.append(bucket)
        identity = [id(item) for item in current]
        cached = self.__dict__.get(_CACHE)
        if cached is not None and cached[0] == identity:
            return list(cached[1])
        keys = [_plain_key(item) for item in current]
        plain = [key for key in keys if key is not None]
        if len(plain) == len(keys) and self.range_key_attr:
            order = sorted(range(len(current)), key=plain.__getitem__)
            ordered = [current[i] for i in order]
        else:
            ordered = original_all_items(self)
        # The cache holds the items themselves, so no id is reused while it lives.
        setattr(self, _CACHE, (identity, ordered, current))
        return list(ordered)

    def scan(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = scan_signature.bind(self, *args, **kwargs)
        if bound.arguments.get("index_name") or bound.arguments.get("projection_expression"):
            return original_scan(self, *args, **kwargs)
        namespace["copy"] = no_copy
        try:
            return original_scan(self, *args, **kwargs)
        finally:
            namespace["copy"] = real_copy

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.scan = scan  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items = original_all_items  # type: ignore[method-assign]
        Table.scan = original_scan  # type: ignore[method-assign]
        namespace["copy"] = real_copy
