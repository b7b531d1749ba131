"""``Publisher``: PutEvents with retries and backoff, on a fake client and a fake sleep."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.publisher import (
    MAX_ENTRIES_PER_CALL,
    MAX_REQUEST_BYTES,
    Publisher,
    entry_size,
    plan_calls,
)


class FakeEvents:
    """An EventBridge client that answers each ``put_events`` call from a script.

    A scripted reply is either an exception to raise or a list naming, per entry of the
    call, an error code (a failed entry) or ``None`` (published).
    """

    def __init__(self, *script: Sequence[str | None] | Exception) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []

    def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([entry["Detail"] for entry in Entries])
        step = self.script.pop(0) if self.script else [None] * len(Entries)
        if isinstance(step, Exception):
            raise step
        assert len(step) == len(Entries), "script does not fit the call"
        results: list[dict[str, Any]] = [
            {"ErrorCode": code, "ErrorMessage": "injected"} if code else {"EventId": f"id-{n}"}
            for n, code in enumerate(step)
        ]
        return {"FailedEntryCount": sum(1 for c in step if c), "Entries": results}


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _entries(n: int) -> list[dict[str, Any]]:
    return [{"Detail": f"e{i}", "Source": "s", "DetailType": "d"} for i in range(n)]


def _publisher(
    events: FakeEvents, sleeps: Sleeps, attempts: int = 4, backoff: float = 0.05
) -> Publisher:
    return Publisher(cast(Any, events), attempts=attempts, backoff=backoff, sleep=sleeps)


def _throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents"
    )


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff jitter is ``1 + random()``; pin it to its lower bound."""
    monkeypatch.setattr(random, "random", lambda: 0.0)


def test_all_entries_published_first_time_means_one_call_and_no_sleep() -> None:
    events, sleeps = FakeEvents(), Sleeps()
    assert _publisher(events, sleeps).publish(_entries(3)).failed == []
    assert events.calls == [["e0", "e1", "e2"]]
    assert sleeps.seconds == []


def test_only_the_failed_entries_are_sent_again() -> None:
    events = FakeEvents([None, "ThrottlingException", None, "InternalFailure"], [None, None])
    sleeps = Sleeps()
    assert _publisher(events, sleeps).publish(_entries(4)).failed == []
    assert events.calls == [["e0", "e1", "e2", "e3"], ["e1", "e3"]]
    assert sleeps.seconds == [0.05]


def test_indexes_that_still_fail_refer_to_the_original_entries() -> None:
    events = FakeEvents(
        [None, "InternalFailure", None, "InternalFailure"],
        [None, "InternalFailure"],
        ["InternalFailure"],
        ["InternalFailure"],
    )
    sleeps = Sleeps()
    assert _publisher(events, sleeps).publish(_entries(4)).failed == [3]
    assert events.calls[1:] == [["e1", "e3"], ["e3"], ["e3"]]


def test_every_entry_of_a_call_failing_is_retried_whole() -> None:
    events = FakeEvents(["InternalFailure"] * 3, [None] * 3)
    sleeps = Sleeps()
    assert _publisher(events, sleeps).publish(_entries(3)).failed == []
    assert events.calls == [["e0", "e1", "e2"]] * 2


def test_a_call_that_raises_is_retried_with_the_same_entries() -> None:
    events = FakeEvents(_throttled(), EndpointConnectionError(endpoint_url="https://x"), [None])
    sleeps = Sleeps()
    assert _publisher(events, sleeps).publish(_entries(1)).failed == []
    assert events.calls == [["e0"]] * 3
    assert sleeps.seconds == [0.05, 0.1]


def test_gives_up_after_the_configured_attempts_and_returns_every_failed_index() -> None:
    events = FakeEvents(*[_throttled()] * 10)
    sleeps = Sleeps()
    assert _publisher(events, sleeps, attempts=3).publish(_entries(2)).failed == [0, 1]
    assert len(events.calls) == 3
    assert len(sleeps.seconds) == 2


def test_a_single_attempt_never_sleeps() -> None:
    events = FakeEvents(["InternalFailure"])
    sleeps = Sleeps()
    assert _publisher(events, sleeps, attempts=1).publish(_entries(1)).failed == [0]
    assert sleeps.seconds == []


def test_backoff_doubles_between_attempts() -> None:
    events = FakeEvents(*[["InternalFailure"]] * 5)
    sleeps = Sleeps()
    _publisher(events, sleeps, attempts=5, backoff=0.1).publish(_entries(1))
    assert sleeps.seconds == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_backoff_jitter_stays_below_twice_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.999)
    events = FakeEvents(*[["InternalFailure"]] * 3)
    sleeps = Sleeps()
    _publisher(events, sleeps, attempts=3, backoff=0.1).publish(_entries(1))
    assert sleeps.seconds == pytest.approx([0.1999, 0.3998])


def test_an_entry_without_an_event_id_counts_as_failed() -> None:
    class NoEventId(FakeEvents):
        def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
            self.calls.append([entry["Detail"] for entry in Entries])
            if len(self.calls) == 1:
                return {"FailedEntryCount": 1, "Entries": [{"EventId": "1"}, {}]}
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "2"}]}

    events, sleeps = NoEventId(), Sleeps()
    assert _publisher(events, sleeps).publish(_entries(2)).failed == []
    assert events.calls == [["e0", "e1"], ["e1"]]


def test_exceptions_that_are_not_aws_errors_are_not_swallowed() -> None:
    events, sleeps = FakeEvents(KeyError("bug")), Sleeps()
    with pytest.raises(KeyError):
        _publisher(events, sleeps).publish(_entries(1))
    assert len(events.calls) == 1


def _sized(n: int, detail_bytes: int) -> list[dict[str, Any]]:
    return [
        {"Source": "s", "DetailType": "d", "Detail": f"{i:04d}" + "x" * (detail_bytes - 4)}
        for i in range(n)
    ]


def test_calls_are_at_most_ten_entries_in_order() -> None:
    calls, too_large = plan_calls(_entries(23))
    assert [len(c) for c in calls] == [10, 10, 3]
    assert [i for call in calls for i in call] == list(range(23))
    assert too_large == []
    assert MAX_ENTRIES_PER_CALL == 10
    assert plan_calls([]) == ([], [])


def test_entry_size_follows_aws_rule() -> None:
    # Time counts 14 bytes; Source, DetailType, Detail and each resource their UTF-8 bytes.
    entry = {"Time": "x", "Source": "é", "DetailType": "dt", "Detail": "€", "Resources": ["ab"]}
    assert entry_size(entry) == 14 + 2 + 2 + 3 + 2
    assert entry_size({"Source": "s", "DetailType": "d"}) == 2


def test_calls_stay_below_256_kb_whatever_the_entry_sizes() -> None:
    entries = _sized(9, 60_000)  # 4 fit below 262,144 bytes, not 5
    calls, too_large = plan_calls(entries)
    assert [len(c) for c in calls] == [4, 4, 1]
    for call in calls:
        assert sum(entry_size(entries[i]) for i in call) < MAX_REQUEST_BYTES
    assert too_large == []


def test_an_entry_of_256_kb_or_more_is_never_sent_and_is_rejected() -> None:
    entries = _entries(2) + _sized(1, MAX_REQUEST_BYTES)
    events, sleeps = FakeEvents(), Sleeps()
    result = _publisher(events, sleeps).publish(entries)
    assert events.calls == [["e0", "e1"]]
    assert list(result.rejected) == [2]
    assert "bytes" in result.rejected[2]
    assert result.failed == []
    assert result.published == 2


def test_a_permanent_entry_error_is_rejected_not_retried() -> None:
    events = FakeEvents([None, "MalformedDetail"])
    sleeps = Sleeps()
    result = _publisher(events, sleeps).publish(_entries(2))
    assert result.failed == []
    assert list(result.rejected) == [1]
    assert len(events.calls) == 1


def test_validation_exception_for_one_entry_is_permanent() -> None:
    refused = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "Total size"}}, "PutEvents"
    )
    events, sleeps = FakeEvents(refused), Sleeps()
    result = _publisher(events, sleeps).publish(_entries(1))
    assert list(result.rejected) == [0]
    assert result.failed == []
    assert sleeps.seconds == []


def test_published_bytes_are_counted() -> None:
    entries = _entries(3)
    result = _publisher(
        FakeEvents([None, "InternalFailure", None], ["InternalFailure"]), Sleeps(), attempts=2
    ).publish(entries)
    assert result.failed == [1]
    assert result.bytes == entry_size(entries[0]) + entry_size(entries[2])
