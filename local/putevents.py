"""EventBridge ``PutEvents`` limits, applied in front of whatever embedded AWS is used.

Neither moto nor other emulators enforce them, so the runtime does (the proxy in
:mod:`local.faults` calls :func:`screen` on every ``PutEvents`` request of the app):

* at most 10 entries per request (API_PutEvents: ``Entries``, array of 1 to 10 items);
* the entries of one request must total less than 256 KB, sized by AWS's rule
  (eb-putevent-size: ``Time`` 14 bytes if given; ``Source``, ``DetailType``, ``Detail``
  and each ``Resources`` entry by their UTF-8 bytes). Either breach rejects the whole
  request with a ``ValidationException``;
* per entry (PutEventsResultEntry): ``InvalidArgument`` for a missing ``Source``,
  ``DetailType`` or ``Detail``; ``MalformedDetail`` for a ``Detail`` that is not a JSON
  object. Failed entries are answered in place; the others go on to the bus.

Example::

    screened = screen({"Entries": [{"Source": "s", "DetailType": "t", "Detail": "[]"}]})
    screened.rejected                  # None: the request as a whole is acceptable
    screened.entry_errors              # [("MalformedDetail", "Detail is malformed.")]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
TIME_BYTES = 14


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes of one request entry, by EventBridge's documented rule."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key) is not None:
            size += len(str(entry[key]).encode("utf-8"))
    for resource in entry.get("Resources") or []:
        if resource is not None:
            size += len(str(resource).encode("utf-8"))
    return size


@dataclass(frozen=True)
class Screened:
    rejected: tuple[str, str] | None  # (error code, message) for the whole request
    entry_errors: list[tuple[str, str] | None]  # one per entry, None when it may go on


def _entry_error(entry: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("Source", "DetailType", "Detail"):
        if not entry.get(key):
            return (
                "InvalidArgument",
                f"Parameter {key} is not valid. Reason: {key} is a required argument.",
            )
    try:
        detail = json.loads(entry["Detail"])
    except (TypeError, ValueError):
        detail = None
    if not isinstance(detail, dict):
        return ("MalformedDetail", "Detail is malformed.")
    return None


def screen(request: dict[str, Any]) -> Screened:
    entries = request.get("Entries") or []
    if len(entries) > MAX_ENTRIES:
        return Screened(
            (
                "ValidationException",
                (
                    "1 validation error detected: Value at 'entries' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {MAX_ENTRIES}"
                ),
            ),
            [],
        )
    if sum(entry_size(e) for e in entries) >= MAX_REQUEST_BYTES:
        return Screened(
            ("ValidationException", "Total size of the entries in the request is over the limit."),
            [],
        )
    return Screened(None, [_entry_error(e) for e in entries])
