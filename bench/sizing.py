"""AWS's billing rules, applied to the items and entries the benchmarks see.

Item size (DynamoDB developer guide, "Item sizes and formats"): the sum over attributes of
the UTF-8 length of the attribute name plus the size of the value, where

* a string is its UTF-8 length, a binary its raw length;
* a number is ``ceil(significant digits / 2) + 1`` bytes (leading/trailing zeros trimmed);
* a boolean or null is 1 byte;
* a list or map is 3 bytes plus, per element, its size plus 1 byte (map keys count too);
* a set is the sum of its elements.

Units:

* read: 4 KB per unit; a Query or Scan page pays for the *sum* of the sizes of the items
  it reads (for a Scan: every item scanned, not only those the filter returns), rounded
  up to 4 KB; strongly consistent = 1 unit per 4 KB, eventually consistent = 0.5;
* write: 1 KB per unit, of the larger of the item before and after the write (a failed
  conditional write pays for the existing item); at least 1 unit;
* global secondary index: a write that adds an index entry costs one index write, one
  that removes it costs one, one that changes an index key costs two (delete + put); a
  change to attributes the index does not project costs nothing;
* EventBridge: one billed event per 64 KB chunk of an entry, the entry's size being the
  UTF-8 length of Source, DetailType, Detail and each Resources ARN, plus 14 bytes for Time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
SCAN_PAGE_BYTES = 1024 * 1024
EVENT_CHUNK_BYTES = 64 * 1024
EVENT_TIME_BYTES = 14


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: one per two significant digits, plus one."""
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        digits = tuple(int(c) for c in text if c.isdigit())
    significant = "".join(str(d) for d in digits).strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB JSON (``{"S": "..."}`` …), name excluded."""
    ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(s) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(value_size(element) + 1 for element in data)
    if kind == "M":
        return 3 + sum(_utf8(k) + value_size(v) + 1 for k, v in data.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Size of an item in DynamoDB JSON; 0 for no item."""
    if not item:
        return 0
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def read_units(total_bytes: int, consistent: bool) -> float:
    """Read units of one Query/Scan page (or GetItem) that read ``total_bytes``."""
    units = max(1, math.ceil(total_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def write_units(before_bytes: int, after_bytes: int) -> int:
    """Write units of a PutItem/UpdateItem/DeleteItem (also a failed conditional one)."""
    return max(1, math.ceil(max(before_bytes, after_bytes) / WRITE_UNIT_BYTES))


def scan_pages(sizes: Iterable[int], page_bytes: int = SCAN_PAGE_BYTES) -> list[int]:
    """Bytes read by each page of a full Scan over items of ``sizes`` (1 MB pages)."""
    pages: list[int] = []
    current = 0
    for size in sizes:
        if current and current + size > page_bytes:
            pages.append(current)
            current = 0
        current += size
    if current or not pages:
        pages.append(current)
    return pages


def full_scan_read_units(sizes: Sequence[int], consistent: bool = False) -> tuple[int, float]:
    """Pages and read units of a full Scan (every page read) of items of ``sizes``."""
    pages = scan_pages(sizes)
    return len(pages), sum(read_units(page, consistent) for page in pages)


def event_entry_size(entry: Mapping[str, Any]) -> int:
    """Billing size of one PutEvents entry."""
    size = EVENT_TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += _utf8(str(entry.get(key) or ""))
    size += sum(_utf8(str(arn)) for arn in entry.get("Resources") or [])
    return size


def event_chunks(entry: Mapping[str, Any]) -> int:
    """Billed events for one PutEvents entry (64 KB chunks)."""
    return max(1, math.ceil(event_entry_size(entry) / EVENT_CHUNK_BYTES))
