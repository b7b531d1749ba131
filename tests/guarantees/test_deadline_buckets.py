"""Issue 9, write-path cost: the deadline buckets keep every guarantee.

The aggregator lists the orders of a batch in one deadline bucket (a base-table
``PutItem``) before it publishes them; the timeout sweep reads the due buckets, acts, lists
again what is not done, and only then deletes the bucket. The failure modes this adds:

* the bucket write fails: DynamoDB throttles a ``PutItem``
  (``ProvisionedThroughputExceededException``, retryable: "the AWS SDKs for DynamoDB
  automatically retry requests that receive this exception",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html);
  the aggregator then publishes nothing and reports the batch's orders in
  ``batchItemFailures``, so Lambda retries the batch (with-ddb: "retry every record
  from the lowest reported sequence number"), or discards it after its retries and sends
  its range to the on-failure queue, which ``stream_recovery`` reads back;
* an order is listed in several buckets (every batch that publishes it lists it);
* the sweep dies between acting and deleting its bucket (a Lambda function killed at
  its timeout runs no more code: "the function is stopped",
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from chalicelib import aws as app_aws
from chalicelib import table
from chalicelib.config import get_settings
from chalicelib.store import EventStore
from tests.guarantees.conftest import CHECKS, Stack
from tests.guarantees.observe import SERVICE_LOGGER, summary_line, tally
from tests.helpers import TABLE

THROTTLED = "ProvisionedThroughputExceededException"


class OutcomeLog(logging.Handler):
    """Counts the targets' ``outcome recorded`` lines (a conditional write that created
    the outcome) per ``order_id``: two for one order would be a doubled outcome."""

    def __init__(self) -> None:
        super().__init__()
        self.created: Counter[str] = Counter()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "outcome recorded":
            with self._guard:
                self.created[str(getattr(record, "order_id", "?"))] += 1


@pytest.fixture
def outcomes() -> Iterator[OutcomeLog]:
    handler = OutcomeLog()
    target = logging.getLogger(SERVICE_LOGGER)
    target.addHandler(handler)
    yield handler
    target.removeHandler(handler)


@pytest.fixture
def app_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The app's DynamoDB and EventBridge calls, in order; bucket writes fail while
    ``state["fail_buckets"]`` is above 0 (a count) or ``True`` (always)."""
    state: dict[str, Any] = {"fail_buckets": 0, "log": []}
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def call(client: BaseClient, operation: str, params: Any) -> Any:
        if client not in (app_aws.dynamodb(), app_aws.events()):
            return original(client, operation, params)
        partition = str((params.get("Item") or {}).get(table.PARTITION_KEY, {}).get("S", ""))
        bucket = operation == "PutItem" and partition.startswith(table.DEADLINE_BUCKETS)
        if bucket and state["fail_buckets"]:
            if state["fail_buckets"] is not True:
                state["fail_buckets"] -= 1
            state["log"].append("bucket-refused")
            error: Any = {"Error": {"Code": THROTTLED, "Message": "Rate of requests exceeds"}}
            raise ClientError(error, operation)
        state["log"].append("bucket" if bucket else operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return state


def _listed(stack: Stack) -> Counter[str]:
    """How many deadline buckets list each order (a Query per bucket partition)."""
    listed: Counter[str] = Counter()
    for number in range(get_settings().pending_shards):
        page = stack.aws.dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="OrderID = :pk",
            ExpressionAttributeValues={":pk": {"S": table.bucket_partition(f"pending-{number}")}},
            ConsistentRead=True,
        )
        for item in page.get("Items", []):
            listed.update(list(item[table.BUCKET_ORDERS]["M"]))
    return listed


def _timed_out_events(stack: Stack) -> Counter[str]:
    return Counter(
        str(e["detail"].get("OrderID"))
        for e in stack.bus.events
        if e["detail"].get("status") == "timed-out"
    )


def _past_deadline(stack: Stack) -> None:
    stack.clock.advance(get_settings().order_timeout_seconds + 1)


def test_a_refused_bucket_write_publishes_nothing_and_the_retried_batch_loses_no_order(
    stack: Stack, app_calls: dict[str, Any], outcomes: OutcomeLog
) -> None:
    """Direct writers (no API): 6 orders miss a check, 4 pass both. The batch's first two
    bucket writes are throttled; Lambda's retries of the batch get it through."""
    pending = [f"slow-{n}" for n in range(6)]
    approved = [f"ok-{n}" for n in range(4)]
    for order in pending:
        stack.direct_write(order, CHECKS[0], "passed")
    for order in approved:
        for check in CHECKS:
            stack.direct_write(order, check, "passed")
    app_calls["fail_buckets"] = 2
    report = stack.run_stream()
    log: list[str] = app_calls["log"]
    assert log.count("bucket-refused") == 2
    assert "PutEvents" not in log[: log.index("bucket")], "published before it was listed"
    assert stack.failure_messages() == 0, report
    assert set(_listed(stack)) == set(pending + approved)

    stack.deliver()
    _past_deadline(stack)
    stack.sweep()
    stack.deliver()
    statuses = stack.statuses(pending + approved)
    result = tally("bucket-write-refused", pending + approved, statuses, stack.sent.sent)
    summary_line(result)
    assert not result.lost and not result.told_twice and not result.told_never, result.counts()
    assert statuses == {
        **dict.fromkeys(pending, "timed-out"),
        **dict.fromkeys(approved, "invoiced"),
    }
    assert all(outcomes.created[o] == 1 for o in pending + approved), outcomes.created


def test_a_batch_discarded_because_its_bucket_cannot_be_written_is_recovered(
    stack: Stack, app_calls: dict[str, Any], outcomes: OutcomeLog
) -> None:
    """Every bucket write of the batch fails until Lambda discards it (the failure
    destination gets its range); ``stream_recovery`` re-aggregates and lists the orders,
    and they time out: none stays pending for ever."""
    orders = [f"lost-{n}" for n in range(5)]
    for order in orders:
        stack.direct_write(order, CHECKS[0], "passed")
    app_calls["fail_buckets"] = True
    stack.run_stream()
    assert stack.failure_messages() >= 1
    assert not _listed(stack) and not stack.bus.events
    app_calls["fail_buckets"] = 0
    recovered = stack.recover()
    assert stack.failure_messages() == 0, recovered
    assert set(_listed(stack)) == set(orders)
    _past_deadline(stack)
    stack.sweep()
    stack.deliver()
    assert stack.statuses(orders) == dict.fromkeys(orders, "timed-out")
    assert all(outcomes.created[o] == 1 for o in orders)


def test_an_order_listed_in_two_buckets_times_out_once(stack: Stack, outcomes: OutcomeLog) -> None:
    """The order is aggregated twice (its result, then its declaration, in two batches
    that may land in different shards' buckets): one timed-out event per sweep run, one
    outcome, and the next run finds it done and lists it nowhere."""
    assert stack.post("twice", CHECKS[0], "passed").status_code == 201
    stack.run_stream()
    stack.clock.advance(5)
    declaration = json.dumps({"checks": list(CHECKS)})
    answer = stack.client.http.put(
        "/orders/twice", headers={"Content-Type": "application/json"}, body=declaration
    )
    assert answer.status_code == 201
    stack.run_stream()
    assert _listed(stack)["twice"] >= 2  # each batch that published it listed it
    stack.deliver()

    _past_deadline(stack)
    counts = stack.sweep()
    assert _timed_out_events(stack)["twice"] == 1
    assert counts["timedOut"] == 1
    stack.deliver(copies=2)
    stack.clock.advance(60)
    stack.sweep()
    assert _timed_out_events(stack)["twice"] == 1  # nothing new on the bus
    assert stack.status("twice") == "timed-out"
    assert outcomes.created["twice"] == 1
    assert _listed(stack)["twice"] == 0


class Killed(BaseException):
    """The sweep's function stopped at its timeout: no more of its code runs."""


def test_a_sweep_killed_between_timing_out_and_deleting_its_bucket_gives_one_outcome(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, outcomes: OutcomeLog
) -> None:
    orders = [f"cut-{n}" for n in range(4)]
    for order in orders:
        assert stack.post(order, CHECKS[0], "passed").status_code == 201
    stack.run_stream()
    stack.deliver()
    _past_deadline(stack)
    deletes = EventStore.delete_bucket

    def killed(self: EventStore, bucket: Any) -> None:
        raise Killed

    monkeypatch.setattr(EventStore, "delete_bucket", killed)
    with pytest.raises(Killed):
        stack.sweep()
    cut = _timed_out_events(stack)  # the first page's orders: published, bucket kept
    assert cut and set(cut.values()) == {1}
    monkeypatch.setattr(EventStore, "delete_bucket", deletes)
    # The next run finds that bucket again before any problem handler ran: it publishes
    # those orders again (and the rest once); every delivery reaches the problem handler.
    stack.sweep()
    published = _timed_out_events(stack)
    assert published == {o: 2 if o in cut else 1 for o in orders}
    stack.deliver()
    stack.clock.advance(60)
    stack.sweep()
    assert _timed_out_events(stack) == published  # done: nothing new
    assert stack.statuses(orders) == dict.fromkeys(orders, "timed-out")
    assert all(outcomes.created[o] == 1 for o in orders), outcomes.created
    assert not _listed(stack)
