"""``python -m ops`` redrive paths the local runtime cannot provoke on demand: AWS refusing
the event again, a transient publish failure, a message naming two orders. The
:class:`ops.commands.Operator` on moto, with chalicelib's own store and aggregator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import table
from chalicelib.config import load_settings
from chalicelib.domain import CheckResult
from chalicelib.publisher import PublishResult
from chalicelib.store import result_item
from local.pipeline import AwsClients, resolve_stream_arn
from local.streams import StreamReader
from ops.commands import Operator
from ops.connect import Target
from ops.errors import INCOMPLETE, NOT_FOUND, OK
from tests.helpers import REGION, TABLE, TEST_ENV

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


class StubPublisher:
    """AWS answering every entry the same way: refused, or failing transiently."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.calls = 0

    def publish(self, entries: Sequence[dict[str, Any]]) -> PublishResult:
        self.calls += 1
        if self.refuse:
            return PublishResult(rejected=dict.fromkeys(range(len(entries)), "too large"))
        return PublishResult(failed=list(range(len(entries))))


def _operator(publisher: Any = None) -> Operator:
    settings = load_settings(TEST_ENV)
    session = boto3.session.Session(region_name=REGION)
    operator = Operator(Target("test", settings, dict(TEST_ENV), None, REGION, session))
    if publisher is not None:
        operator.__dict__["publisher"] = publisher  # before the aggregator is built
    return operator


def _approved(aws: AwsClients, order_id: str) -> None:
    for name in ("Account Check", "In Stock"):
        item = result_item(order_id, CheckResult(name, "passed", NOW))
        aws.dynamodb.put_item(TableName=TABLE, Item={k: {"S": v} for k, v in item.items()})


def _dead_letter(aws: AwsClients, order_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = aws.dynamodb.get_item(
        TableName=TABLE,
        Key={"OrderID": {"S": order_id}, "EventName": {"S": table.DEAD_LETTER_RECORD}},
    ).get("Item")
    return item


@pytest.mark.parametrize(("refuse", "action"), [(True, "refused"), (False, "failed")])
def test_an_order_aws_still_does_not_take_stays_parked(
    aws: AwsClients, refuse: bool, action: str
) -> None:
    _approved(aws, "big")
    operator = _operator(StubPublisher(refuse))
    operator.store.park("big", "event-refused", "too large", NOW)
    before = _dead_letter(aws, "big")

    report = operator.redrive(None, [], dry_run=False, extra_queues=[])

    assert report.code == INCOMPLETE
    assert [(o["orderId"], o["action"]) for o in report.data["orders"]] == [("big", action)]
    assert report.data["entries"][0]["result"] == "kept: big not through yet"
    after = _dead_letter(aws, "big")
    assert after is not None
    if refuse:  # parked again by the aggregator, with a new time
        assert after["ParkedAt"] != before["ParkedAt"]  # type: ignore[index]
        assert "parked again (event-refused)" in report.data["orders"][0]["detail"]
    else:  # untouched: the next run tries again
        assert after == before


def _stream_range_message(aws: AwsClients) -> str:
    arn = resolve_stream_arn(aws.dynamodb, TEST_ENV["EVENTS_STREAM_ARN"])
    shard = aws.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    numbers = [
        r["dynamodb"]["SequenceNumber"] for r in StreamReader(aws.streams, arn, REGION).read(1000)
    ]
    info = {
        "shardId": shard["ShardId"],
        "startSequenceNumber": min(numbers, key=int),
        "endSequenceNumber": max(numbers, key=int),
        "batchSize": len(numbers),
        "streamArn": arn,
    }
    return json.dumps({"DDBStreamBatchInfo": info})


def _depth(aws: AwsClients, url: str) -> tuple[str, str]:
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attributes["ApproximateNumberOfMessages"], attributes[
        "ApproximateNumberOfMessagesNotVisible"
    ]


def test_a_message_naming_two_orders_goes_only_once_both_are_through(aws: AwsClients) -> None:
    _approved(aws, "o1")
    _approved(aws, "o2")
    operator = _operator()
    url = aws.sqs.create_queue(QueueName=operator.settings.stream_failure_queue)["QueueUrl"]
    aws.sqs.send_message(QueueUrl=url, MessageBody=_stream_range_message(aws))

    listed = operator.dead_letters([]).data["queues"][0]["messages"]
    assert listed[0]["orderIds"] == ["o1", "o2"]

    first = operator.redrive(None, ["o1"], dry_run=False, extra_queues=[])
    assert first.code == OK
    assert [(o["orderId"], o["action"]) for o in first.data["orders"]] == [("o1", "published")]
    assert first.data["entries"][0]["result"] == "kept: o2 not through yet"
    assert _depth(aws, url) == ("1", "0")  # given back at once, not held for 300 s

    second = operator.redrive(None, [], dry_run=False, extra_queues=[])
    assert [(o["orderId"], o["action"]) for o in second.data["orders"]] == [
        ("o1", "published"),
        ("o2", "published"),
    ]
    assert _depth(aws, url) == ("0", "0")
    assert operator.redrive(None, [], dry_run=False, extra_queues=[]).code == NOT_FOUND


def test_an_unknown_source_names_the_ones_there_are(aws: AwsClients) -> None:
    from ops.errors import OpsError

    with pytest.raises(
        OpsError, match="unknown --source 'nope'; expected one of dead-letters, stream-failures"
    ):
        _operator().redrive("nope", [], dry_run=True, extra_queues=[])
