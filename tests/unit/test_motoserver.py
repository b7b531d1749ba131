"""The runtime's fixes to moto (local.motoserver): same answers as DynamoDB, and they
refuse to apply to a moto version they were not verified on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws

from local import motoserver


def create_table(
    client: Any, name: str, extra_attributes: list[dict[str, str]] | None = None, **options: Any
) -> Any:
    """An on-demand table keyed by string ``pk`` and ``sk``."""
    return client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            *(extra_attributes or []),
        ],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )


@pytest.fixture
def table() -> Iterator[Any]:
    motoserver.patch_moto()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(
            client,
            "t",
            extra_attributes=[{"AttributeName": "g", "AttributeType": "S"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byG",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        for p in range(5):
            for s in range(4):
                client.put_item(
                    TableName="t",
                    Item={"pk": {"S": f"p{p}"}, "sk": {"S": f"s{s}"}, "g": {"S": f"g{s}"}},
                )
        yield client


def test_a_base_table_query_returns_exactly_its_partition_in_order(table: Any) -> None:
    found = table.query(
        TableName="t",
        KeyConditionExpression="pk = :p AND sk > :s",
        ExpressionAttributeValues={":p": {"S": "p3"}, ":s": {"S": "s0"}},
        ConsistentRead=True,
    )["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in found] == [
        ("p3", "s1"),
        ("p3", "s2"),
        ("p3", "s3"),
    ]


def test_an_index_query_still_reads_the_whole_index(table: Any) -> None:
    found = table.query(
        TableName="t",
        IndexName="byG",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "g2"}},
    )["Items"]
    assert sorted(i["pk"]["S"] for i in found) == [f"p{p}" for p in range(5)]


def test_the_fixes_are_in_place_after_patching() -> None:
    from moto.dynamodb.models.table import Table

    motoserver.patch_moto()
    assert getattr(Table.query, "_local_patched", False)


def test_the_fixes_refuse_an_unverified_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    assert moto.__version__ == motoserver.VERIFIED_MOTO  # requirements-dev pins it
    monkeypatch.setattr(moto, "__version__", "999.0.0")
    with pytest.raises(RuntimeError, match="verified on moto"):
        motoserver.patch_moto()


# The fixes below change how fast moto answers, not what it answers.


@pytest.fixture
def bus_to_queue() -> Iterator[tuple[Any, Any, str]]:
    motoserver.patch_moto()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="all", EventPattern='{"source": ["s"]}')
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])
        yield sqs, events, url


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    import json

    page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in page.get("Messages", [])]


def test_each_event_reaches_an_sqs_target_with_its_own_fields(
    bus_to_queue: tuple[Any, Any, str],
) -> None:
    # EventBridge delivers the event itself to a target without an input transformer
    # (eb-transform-target-input); the cached input paths must not carry one event's
    # values into the next.
    sqs, events, url = bus_to_queue
    for n in (1, 2):
        events.put_events(
            Entries=[{"Source": "s", "DetailType": f"t{n}", "Detail": f'{{"n": {n}}}'}]
        )
    bodies = sorted(_received(sqs, url), key=lambda b: b["detail"]["n"])
    assert [(b["detail-type"], b["detail"], b["source"]) for b in bodies] == [
        ("t1", {"n": 1}, "s"),
        ("t2", {"n": 2}, "s"),
    ]


def test_a_message_past_the_queues_retention_period_is_not_received(
    bus_to_queue: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MessageRetentionPeriod: "the length of time ... for which Amazon SQS retains a
    # message" (SQS SetQueueAttributes); the queue above keeps them 60 seconds.
    import time

    from moto.core import utils
    from moto.sqs import models as sqs_models

    sqs, _, url = bus_to_queue
    sqs.send_message(QueueUrl=url, MessageBody='{"kept": true}')
    assert _received(sqs, url) == [{"kept": True}]
    sqs.send_message(QueueUrl=url, MessageBody='{"kept": false}')
    later = lambda *args: time.time() + 61
    monkeypatch.setattr(utils, "unix_time", later)
    monkeypatch.setattr(sqs_models, "unix_time", later)  # where moto's own check reads it
    assert _received(sqs, url) == []


def test_the_service_list_is_moto_own() -> None:
    import os

    from moto import backends

    motoserver.patch_moto()
    folder = os.path.dirname(moto.__file__)
    expected = sorted(
        name
        for name in os.listdir(folder)
        if os.path.isdir(os.path.join(folder, name)) and not name.startswith("__")
    )
    assert list(backends.list_of_moto_modules()) == expected
    assert {"dynamodb", "dynamodbstreams", "events", "sqs"} <= set(expected)


def test_a_fifo_queue_with_content_based_deduplication_still_drops_a_resent_body() -> None:
    # ContentBasedDeduplication: "Amazon SQS uses a SHA-256 hash to generate the
    # MessageDeduplicationId using the body of the message" (SQS CreateQueue), and a
    # message with a deduplication ID already sent within five minutes is not delivered.
    motoserver.patch_moto()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(
            QueueName="q.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        for body in ('{"n": 1}', '{"n": 1}', '{"n": 2}'):
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "2"
        assert attributes["ContentBasedDeduplication"] == "true"


def test_a_standard_queue_counts_every_message_sent_to_it(
    bus_to_queue: tuple[Any, Any, str],
) -> None:
    sqs, events, url = bus_to_queue
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    events.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}])
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert "ContentBasedDeduplication" not in attributes


EVERY_TYPE = {
    "pk": {"S": "p"},
    "sk": {"S": "every"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\xffbytes"},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}, {"B": b"\x03"}]}}},
    "l": {"L": []},
}


def test_items_of_every_attribute_type_come_back_as_they_were_written(table: Any) -> None:
    # AttributeValue (DynamoDB API reference): S, N, B, SS, NS, BS, M, L, NULL, BOOL;
    # items written directly to the wire must decode to what was put.
    old = table.put_item(TableName="t", Item=EVERY_TYPE, ReturnValues="ALL_OLD")
    assert "Attributes" not in old
    key = {"pk": EVERY_TYPE["pk"], "sk": EVERY_TYPE["sk"]}
    assert table.get_item(TableName="t", Key=key, ConsistentRead=True)["Item"] == EVERY_TYPE
    found = table.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )["Items"]
    assert found == [EVERY_TYPE]
    updated = table.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated == {**EVERY_TYPE, "n": {"N": "7"}}


@pytest.fixture
def streamed() -> Iterator[tuple[Any, Any]]:
    """A table with a NEW_AND_OLD_IMAGES stream, and a reader of its records so far."""
    motoserver.patch_moto()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        arn = create_table(
            client,
            "w",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        position = {
            "iterator": streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        }

        def records() -> list[dict[str, Any]]:
            page = streams.get_records(ShardIterator=position["iterator"])
            position["iterator"] = page["NextShardIterator"]
            return [dict(record) for record in page["Records"]]

        yield client, records


def changes(streamed: Any) -> list[tuple[str, Any]]:
    """The stream records written since the last look: (event name, new image)."""
    _, records = streamed
    return [(r["eventName"], r["dynamodb"].get("NewImage")) for r in records()]


def test_stream_images_of_every_attribute_type_are_what_was_written(streamed: Any) -> None:
    client, records = streamed
    client.put_item(TableName="w", Item=EVERY_TYPE)
    (record,) = records()
    assert record["dynamodb"]["NewImage"] == EVERY_TYPE
    assert record["dynamodb"]["Keys"] == {"pk": EVERY_TYPE["pk"], "sk": EVERY_TYPE["sk"]}


KEY = {"pk": {"S": "p"}, "sk": {"S": "s"}}


def set_n(client: Any, number: str) -> None:
    """``SET n = <number>`` on the KEY item (UpdateItem creates it if it is missing)."""
    client.update_item(
        TableName="w",
        Key=KEY,
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": number}},
    )


def test_an_update_that_creates_its_item_writes_one_insert_record(streamed: Any) -> None:
    # DynamoDB Streams writes one stream record per item modification (developer guide,
    # Change data capture for DynamoDB Streams); moto wrote two INSERTs here.
    client, _ = streamed
    set_n(client, "1")
    assert changes(streamed) == [("INSERT", {**KEY, "n": {"N": "1"}})]
    set_n(client, "2")
    assert changes(streamed) == [("MODIFY", {**KEY, "n": {"N": "2"}})]


def test_a_write_that_changes_nothing_writes_no_record(streamed: Any) -> None:
    # "If you perform a PutItem or UpdateItem operation that does not change any data in
    # an item, DynamoDB Streams does not write a stream record for that operation."
    client, _ = streamed
    item = {**KEY, "n": {"N": "1"}}
    client.put_item(TableName="w", Item=item)
    assert changes(streamed) == [("INSERT", item)]
    client.put_item(TableName="w", Item=item)
    set_n(client, "1.0")  # the same number
    assert changes(streamed) == []
    client.put_item(TableName="w", Item={**KEY, "n": {"N": "3"}})
    client.delete_item(TableName="w", Key=KEY)
    assert changes(streamed) == [("MODIFY", {**KEY, "n": {"N": "3"}}), ("REMOVE", None)]


def test_update_expressions_are_still_applied_and_refused_as_dynamodb_does(table: Any) -> None:
    # UpdateItem (DynamoDB API reference): SET, REMOVE, ADD and if_not_exists apply; an
    # expression that updates a key, names an undefined value or two overlapping paths is
    # a ValidationException and changes nothing.
    key = {"pk": {"S": "p0"}, "sk": {"S": "s0"}}
    updated = table.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET a = if_not_exists(a, :one), b = :two REMOVE g ADD c :one",
        ExpressionAttributeValues={":one": {"N": "1"}, ":two": {"S": "two"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated == {**key, "a": {"N": "1"}, "b": {"S": "two"}, "c": {"N": "1"}}
    refused = [
        ("SET pk = :v", {":v": {"S": "x"}}),
        ("SET a = :missing", {":v": {"S": "x"}}),
        ("SET m.x = :v, m = :v", {":v": {"S": "x"}}),
    ]
    for expression, values in refused:
        with pytest.raises(table.exceptions.ClientError, match="ValidationException"):
            table.update_item(
                TableName="t",
                Key=key,
                UpdateExpression=expression,
                ExpressionAttributeValues=values,
            )
    assert table.get_item(TableName="t", Key=key, ConsistentRead=True)["Item"] == updated
