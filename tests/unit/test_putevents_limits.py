"""PutEvents limits as EventBridge documents them (API_PutEvents, eb-putevent-size,
PutEventsResultEntry), applied by the local runtime in front of the embedded AWS."""

from __future__ import annotations

import json

from local.putevents import MAX_REQUEST_BYTES, entry_size, screen


def _entry(detail: str = "{}", **extra: object) -> dict[str, object]:
    return {"Source": "src", "DetailType": "type", "Detail": detail, **extra}


def test_entry_size_follows_the_documented_rule() -> None:
    # Time: 14 bytes; Source, DetailType, Detail, each resource: UTF-8 bytes.
    entry = _entry('{"a":"é"}', Time="2026-01-01T00:00:00Z", Resources=["arn:r1", "r2"])
    assert entry_size(entry) == 14 + 3 + 4 + len('{"a":"é"}'.encode()) + 6 + 2


def test_eleven_entries_are_refused_as_a_whole() -> None:
    assert screen({"Entries": [_entry()] * 10}).rejected is None
    rejected = screen({"Entries": [_entry()] * 11}).rejected
    assert rejected is not None and rejected[0] == "ValidationException"


def test_a_request_of_256_kb_or_more_is_refused_as_a_whole() -> None:
    base = entry_size(_entry(json.dumps({"p": ""})))
    under = _entry(json.dumps({"p": "x" * (MAX_REQUEST_BYTES - 1 - base)}))
    assert entry_size(under) == MAX_REQUEST_BYTES - 1
    assert screen({"Entries": [under]}).rejected is None
    at = _entry(json.dumps({"p": "x" * (MAX_REQUEST_BYTES - base)}))
    rejected = screen({"Entries": [at]}).rejected
    assert rejected is not None and rejected[0] == "ValidationException"


def test_bad_entries_get_their_own_error_codes() -> None:
    screened = screen(
        {
            "Entries": [
                _entry('{"ok": true}'),
                {"DetailType": "t", "Detail": "{}"},
                {"Source": "s", "Detail": "{}"},
                {"Source": "s", "DetailType": "t"},
                _entry("[1]"),
                _entry("not json"),
            ]
        }
    )
    codes = [error[0] if error else None for error in screened.entry_errors]
    assert codes == [
        None,
        "InvalidArgument",
        "InvalidArgument",
        "InvalidArgument",
        "MalformedDetail",
        "MalformedDetail",
    ]
