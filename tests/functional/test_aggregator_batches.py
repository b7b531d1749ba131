"""The aggregator on whole stream batches: Query per order, PutEvents limits, failures."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from chalice.test import Client

from chalicelib import aws as app_aws
from chalicelib import services
from chalicelib.aggregator import Aggregator
from chalicelib.config import get_settings
from chalicelib.domain import CheckResult
from chalicelib.publisher import Publisher
from chalicelib.store import _serialize, result_item
from local.pipeline import AwsClients, resolve_stream_arn
from local.streams import StreamReader
from tests.helpers import REGION, TABLE, TEST_ENV

START = datetime(2026, 1, 1, tzinfo=UTC)


def _write(aws: AwsClients, order_id: str, name: str, status: str, minutes: int) -> None:
    result = CheckResult(name, status, START + timedelta(minutes=minutes))
    aws.dynamodb.put_item(TableName=TABLE, Item=_serialize(result_item(order_id, result)))


def _stream_records(aws: AwsClients, count: int) -> list[dict[str, Any]]:
    arn = resolve_stream_arn(aws.dynamodb, TEST_ENV["EVENTS_STREAM_ARN"])
    reader = StreamReader(aws.streams, arn, REGION)
    records: list[dict[str, Any]] = []
    while len(records) < count:
        fresh = reader.read(count - len(records))
        assert fresh, f"stream ended after {len(records)} records"
        records.extend(fresh)
    return records


def _hundred_records_from_40_orders(aws: AwsClients) -> list[dict[str, Any]]:
    for n in range(40):
        _write(aws, f"order-{n}", "Account Check", "passed", 1)
        _write(aws, f"order-{n}", "In Stock", "passed", 1)
    for n in range(20):
        _write(aws, f"order-{n}", "In Stock", "failed", 2)
    return _stream_records(aws, 100)


def test_batch_of_100_records_from_40_orders_reads_each_order_once(
    client: Client, aws: AwsClients, aws_calls: Counter[str]
) -> None:
    records = _hundred_records_from_40_orders(aws)
    assert len(records) == 100
    response = client.lambda_.invoke("aggregator", {"Records": records}).payload
    assert response == {"batchItemFailures": []}
    assert aws_calls["dynamodb.Query"] == 40
    assert aws_calls["dynamodb.Scan"] == 0
    assert aws_calls["events.PutEvents"] == math.ceil(40 / 10)


def test_records_that_are_not_source_events_are_skipped(client: Client, aws: AwsClients) -> None:
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={"OrderID": {"S": "x"}, "EventName": {"S": "Foreign"}, "Colour": {"S": "red"}},
    )
    records = _stream_records(aws, 1)
    garbage = {"eventName": "INSERT", "dynamodb": {"Keys": {}}}
    response = client.lambda_.invoke("aggregator", {"Records": [*records, garbage]}).payload
    assert response == {"batchItemFailures": []}


class FlakyEvents:
    """EventBridge that fails chosen orders' entries a number of times."""

    def __init__(self, real: Any, failures: dict[str, int]) -> None:
        self._real = real
        self.failures = failures
        self.calls: list[int] = []

    def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        results: list[dict[str, Any]] = []
        passing = []
        for entry in Entries:
            order = json.loads(entry["Detail"])["OrderID"]
            if self.failures.get(order, 0) > 0:
                self.failures[order] -= 1
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "injected"})
            else:
                passing.append(entry)
                results.append({})
        real = self._real.put_events(Entries=passing)["Entries"] if passing else []
        for result in results:
            if not result:
                result.update(real.pop(0))
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


def _aggregator(events: FlakyEvents) -> Aggregator:
    publisher = Publisher(events, attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    return Aggregator(services.store(), publisher, get_settings())


def test_failed_put_events_entries_are_retried_until_published(aws: AwsClients) -> None:
    records = _hundred_records_from_40_orders(aws)
    events = FlakyEvents(app_aws.events(), {"order-3": 2, "order-27": 1})
    response = _aggregator(events).handle(records)
    assert response == {"batchItemFailures": []}
    assert events.failures == {"order-3": 0, "order-27": 0}
    # Orders go out in the order of their last record: 20-29, 30-39, 0-9, 10-19.
    assert events.calls == [10, 1, 10, 10, 1, 1, 10]


def test_entries_that_keep_failing_come_back_as_batch_item_failures(aws: AwsClients) -> None:
    records = _hundred_records_from_40_orders(aws)
    events = FlakyEvents(app_aws.events(), {"order-23": 99})
    response = _aggregator(events).handle(records)
    last_of_order_23 = [
        r["dynamodb"]["SequenceNumber"]
        for r in records
        if r["dynamodb"]["Keys"]["OrderID"]["S"] == "order-23"
    ][-1]
    assert response == {"batchItemFailures": [{"itemIdentifier": last_of_order_23}]}
    # The other calls go out too: nothing is withheld until Lambda would discard it.
    assert events.calls == [10, 1, 1, 10, 10, 10]


def test_every_entry_of_a_call_failing_is_retried(aws: AwsClients) -> None:
    records = _hundred_records_from_40_orders(aws)
    events = FlakyEvents(app_aws.events(), {f"order-{n}": 1 for n in range(10)})
    response = _aggregator(events).handle(records)
    assert response == {"batchItemFailures": []}
    assert events.calls == [10, 10, 10, 10, 10]
