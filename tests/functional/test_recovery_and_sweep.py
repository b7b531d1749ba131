"""The paths AWS takes when it gives up: stream ranges Lambda discarded, orders no
batch could read, claims whose holder died, and a backlog of due orders. On moto, through
the app's own handlers (Chalice's test client)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import aws as app_aws
from chalicelib import clock, services, table
from chalicelib.config import get_settings
from chalicelib.domain import CheckResult
from chalicelib.store import result_item
from chalicelib.timeouts import TimeoutSweep
from local.pipeline import AwsClients, Pipeline, resolve_stream_arn
from local.streams import StreamReader
from tests.helpers import REGION, TABLE, TEST_ENV, post_result

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The app's clock, as a one-element list a test can move."""
    moment = [NOW]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    return moment


def _put_direct(aws: AwsClients, order_id: str, name: str, status: str, reason: str = "") -> None:
    """A source writing its own item, as the README documents (no API call)."""
    result = CheckResult(name, status, NOW, reason=reason or None)
    item = {k: {"S": v} for k, v in result_item(order_id, result).items()}
    aws.dynamodb.put_item(TableName=TABLE, Item=item)


def _stream(aws: AwsClients) -> tuple[str, str, list[dict[str, Any]]]:
    arn = resolve_stream_arn(aws.dynamodb, TEST_ENV["EVENTS_STREAM_ARN"])
    shard = aws.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    records = StreamReader(aws.streams, arn, REGION).read(1000)
    return arn, shard["ShardId"], records


def _on_failure(arn: str, shard: str, records: list[dict[str, Any]]) -> str:
    """Lambda's on-failure message for a discarded batch (DDBStreamBatchInfo)."""
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    return json.dumps(
        {
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": min(numbers, key=int),
                "endSequenceNumber": max(numbers, key=int),
                "batchSize": len(records),
                "streamArn": arn,
            },
        }
    )


def _recover(client: Client, *bodies: str) -> dict[str, Any]:
    event = client.events.generate_sqs_event(message_bodies=list(bodies), queue_name="q")
    payload: dict[str, Any] = client.lambda_.invoke("stream_recovery", event).payload
    return payload


def _view(client: Client, order_id: str) -> dict[str, Any]:
    response = client.http.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.body
    body: dict[str, Any] = response.json_body
    return body


def test_a_discarded_range_of_direct_writes_is_aggregated_again_and_invoiced(
    client: Client, aws: AwsClients, pipeline: Pipeline, now: list[datetime]
) -> None:
    # Lambda discarded the batch that held these records (its retries ran out): nothing
    # opened the order, so without recovery it would stay pending for ever.
    _put_direct(aws, "d1", "Account Check", "passed")
    _put_direct(aws, "d1", "In Stock", "passed")
    _put_direct(aws, "d2", "Account Check", "passed")
    arn, shard, records = _stream(aws)
    assert _recover(client, _on_failure(arn, shard, records)) == {"batchItemFailures": []}
    pipeline.run_until_idle()  # the re-published events reach their targets
    assert _view(client, "d1")["status"] == "invoiced"
    pending = _view(client, "d2")
    assert pending["status"] == "pending"
    assert pending["deadline"] == "2026-01-31T12:15:00.000000Z"  # opened by the recovery


def test_a_range_the_stream_no_longer_holds_is_parked_not_retried(
    client: Client, aws: AwsClients, now: list[datetime]
) -> None:
    _put_direct(aws, "d3", "Account Check", "passed")
    arn, shard, records = _stream(aws)

    def trimmed(**_: Any) -> None:
        # What DynamoDB Streams answers for records older than its 24 hours (moto has
        # no trimming, so the answer is injected at the boto3 boundary).
        raise ClientError(
            {"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}},
            "GetShardIterator",
        )

    app_aws.dynamodb_streams().meta.events.register(
        "before-call.dynamodbstreams.GetShardIterator", trimmed
    )
    assert _recover(client, _on_failure(arn, shard, records)) == {"batchItemFailures": []}
    parked = services.store().dead_letters()
    assert [p[table.FAULT] for p in parked] == ["stream-range-lost"]
    assert shard in parked[0][table.PARTITION_KEY]


def test_a_message_that_is_not_an_on_failure_record_goes_back_to_the_queue(
    client: Client, aws: AwsClients
) -> None:
    event = client.events.generate_sqs_event(message_bodies=["{}", "not json"], queue_name="q")
    payload = client.lambda_.invoke("stream_recovery", event).payload
    ids = [r["messageId"] for r in event["Records"]]
    assert payload == {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


def test_an_order_with_a_corrupt_record_is_parked_and_shown_as_json(
    client: Client, aws: AwsClients, pipeline: Pipeline, now: list[datetime]
) -> None:
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "OrderID": {"S": "bad"},
            "EventName": {"S": table.ORDER_RECORD},
            "Deadline": {"S": "not-a-time"},
        },
    )
    post_result(client, "bad", "In Stock", "passed", reason="counted")
    post_result(client, "good", "Account Check", "passed")
    post_result(client, "good", "In Stock", "passed")
    pipeline.run_until_idle()
    assert pipeline.failures.entries == []  # nothing retried, nothing discarded
    assert _view(client, "good")["status"] == "invoiced"
    view = _view(client, "bad")
    assert view["deadLettered"] == "corrupt-item"
    assert view["corrupt"] == ["order record: Deadline 'not-a-time' is not a time"]
    assert view["events"]["In Stock"] == {
        "status": "passed",
        "reason": "counted",
        "occurredAt": view["events"]["In Stock"]["occurredAt"],
    }
    assert [p[table.PARTITION_KEY] for p in services.store().dead_letters()] == ["bad"]


def test_a_parked_order_is_unparked_once_it_is_published(
    client: Client, aws: AwsClients, pipeline: Pipeline, now: list[datetime]
) -> None:
    services.store().park("fixed", "corrupt-item", "was broken", NOW)
    post_result(client, "fixed", "Account Check", "passed")
    pipeline.run_until_idle()
    assert services.store().dead_letters() == []
    assert "deadLettered" not in _view(client, "fixed")


def _due_orders(count: int, per_batch: int = 3) -> list[str]:
    """``count`` orders with one check each, aggregated as the app does, ``per_batch``
    orders a batch: one deadline bucket per batch, spread over the shards."""
    store = services.store()
    ids = [f"late-{n}" for n in range(count)]
    for order_id in ids:
        store.record_result(order_id, CheckResult("Account Check", "passed", NOW), True)
    for start in range(0, count, per_batch):
        assert services.aggregator().aggregate(ids[start : start + per_batch]) == set()
    return ids


def _sweep(ticks: list[float], page_size: int) -> TimeoutSweep:
    """The app's sweep with small bucket pages and a clock for its budget that moves
    only when the test says (no real time is measured)."""
    return TimeoutSweep(
        services.store(),
        services.publisher(),
        get_settings(),
        services.outcomes(),
        monotonic=lambda: ticks[0],
        bucket_page=page_size,
    )


def test_one_sweep_times_out_every_due_order_across_pages_and_shards(
    client: Client, aws: AwsClients, now: list[datetime]
) -> None:
    due = 90  # 30 buckets, pages of 2 buckets: several pages in each of the 4 shards
    _due_orders(due)
    now[0] = NOW + timedelta(seconds=get_settings().order_timeout_seconds)
    published: list[str] = []
    publish = services.publisher().publish

    def counting(entries: Any) -> Any:
        published.extend(json.loads(e["Detail"])["OrderID"] for e in entries)
        return publish(entries)

    services.publisher().publish = counting  # type: ignore[method-assign]
    counts = _sweep([0.0], page_size=2).run()
    assert (counts["due"], counts["timedOut"], counts["incomplete"]) == (due, due, 0)
    assert counts["buckets"] == due // 3
    assert sorted(published) == sorted(f"late-{n}" for n in range(due))


def test_a_sweep_stops_at_its_budget_and_the_next_run_goes_on(
    client: Client, aws: AwsClients, now: list[datetime]
) -> None:
    _due_orders(30)
    now[0] = NOW + timedelta(seconds=get_settings().order_timeout_seconds)
    ticks = [0.0]
    sweep = _sweep(ticks, page_size=1)
    reads = services.store().due_buckets

    def slow_pages(*args: Any, **kwargs: Any) -> Any:
        ticks[0] += 15.0  # each bucket page "takes" 15 s of the 40 s budget
        return reads(*args, **kwargs)

    services.store().due_buckets = slow_pages  # type: ignore[method-assign]
    first = sweep.run()
    assert first["incomplete"] == 1  # three bucket pages fit in the budget, not all
    assert 0 < first["timedOut"] < 30
    # The next run goes on with the buckets left; the first run's orders are listed
    # again for the run after (no problem handler runs here, so they are still due then).
    services.store().due_buckets = reads  # type: ignore[method-assign]
    second = _sweep([0.0], page_size=50).run()
    assert second["incomplete"] == 0
    assert first["timedOut"] + second["timedOut"] == 30
    now[0] += timedelta(seconds=60)
    third = _sweep([0.0], page_size=50).run()
    assert (third["timedOut"], third["incomplete"]) == (30, 0)
