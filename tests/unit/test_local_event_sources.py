"""The local runtime's event shapes and resource rules, as pure functions.

Shapes are checked against Powertools' models of Lambda's events (with-sqs, with-sns,
notification-content-structure, with-kinesis) and against the fields Chalice's own test
client generators (``chalice.test``) put in the same events.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    KinesisDataStreamModel,
    S3Model,
    SnsModel,
    SqsModel,
)
from chalice.app import Chalice
from chalice.test import Client

from local.kinesis import kinesis_record
from local.resources import missing_message
from local.s3 import key_matches, s3_record
from local.sns import sns_record
from local.sqs import failed_message_ids, sqs_record
from local.streams import _SHARD
from local.template import BucketTrigger, Needed, ProjectSettings, needed_resources, referenced_id

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:jobs"


def _chalice_event(kind: str) -> dict[str, Any]:
    """One event from Chalice's own test-client generators (the cross-check)."""
    with Client(Chalice(app_name="shapes")) as client:
        events = client.events
        made: dict[str, Any] = {
            "sqs": lambda: events.generate_sqs_event(["x"]),
            "sns": lambda: events.generate_sns_event("x", subject="s"),
            "s3": lambda: events.generate_s3_event("b", "k"),
            "kinesis": lambda: events.generate_kinesis_event([b"x"]),
        }[kind]()
        return made


def _keys(record: dict[str, Any]) -> set[str]:
    return set(record)


def test_an_sqs_message_becomes_lambdas_sqs_record() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1",
            "SenderId": "s",
            "ApproximateFirstReceiveTimestamp": "2",
            "SomethingElse": "dropped",
        },
        "MessageAttributes": {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }
    record = sqs_record(message, QUEUE_ARN, "us-east-1")
    parse(event={"Records": [record]}, model=SqsModel)
    assert _keys(record) == _keys(_chalice_event("sqs")["Records"][0])
    assert "SomethingElse" not in record["attributes"]
    assert record["messageAttributes"]["blob"] == {
        "binaryValue": "AAE=",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }


def test_a_partial_batch_response_names_messages_of_the_batch_or_fails_it_all() -> None:
    batch = {"a", "b"}
    assert failed_message_ids({"batchItemFailures": []}, batch) == set()
    assert failed_message_ids(None, batch) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, batch) == {"b"}
    # services-sqs-batchfailurereporting: empty, null or unknown identifiers fail the batch.
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, batch) is None
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": None}]}, batch) is None
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, batch) is None


def test_snss_envelope_becomes_lambdas_sns_record() -> None:
    envelope = {
        "Type": "Notification",
        "MessageId": "id-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "Message": "hi",
        "Timestamp": "2026-12-01T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "sig",
        "SigningCertURL": "https://cert",
        "UnsubscribeURL": "https://unsubscribe",
        "MessageAttributes": {"a": {"Type": "String", "Value": "1"}},
    }
    record = sns_record(envelope, "arn:aws:sns:us-east-1:123456789012:alerts:sub")
    parse(event={"Records": [record]}, model=SnsModel)
    chalice = _chalice_event("sns")["Records"][0]
    assert _keys(record) == _keys(chalice)
    assert set(record["Sns"]) == set(chalice["Sns"])
    assert record["Sns"]["Subject"] is None
    assert record["Sns"]["SigningCertUrl"] == "https://cert"


def test_an_s3_event_is_completed_to_s3s_documented_structure() -> None:
    moto_record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-01T10:00:00.123456",
        "eventName": "ObjectRemoved:Delete",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "x",
            "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
            "object": {"key": "a%2Fb+c.jpg", "size": 3, "eTag": "e"},
        },
    }
    record = s3_record(moto_record, "on_removed", "0001")
    parse(event={"Records": [record]}, model=S3Model)
    chalice = _chalice_event("s3")["Records"][0]
    assert _keys(record) == _keys(chalice)
    assert record["eventTime"] == "2026-12-01T10:00:00.123Z"
    assert record["s3"]["object"] == {"key": "a/b+c.jpg", "sequencer": "0001"}
    assert record["s3"]["configurationId"] == "on_removed"


def test_s3_key_filters_are_a_prefix_and_a_suffix_of_the_key() -> None:
    trigger = BucketTrigger("f", "b", ("s3:ObjectCreated:*",), "photos/", ".jpg")
    assert key_matches(trigger, "photos/a.jpg")
    assert not key_matches(trigger, "photos/a.png")
    assert not key_matches(trigger, "other/a.jpg")
    assert key_matches(BucketTrigger("f", "b", ("s3:ObjectCreated:*",)), "anything")


def test_a_kinesis_record_becomes_lambdas_kinesis_record() -> None:
    arrived = datetime(2026, 12, 1, 10, 0, 0, 500000, tzinfo=UTC)
    record = kinesis_record(
        {
            "SequenceNumber": "4959",
            "ApproximateArrivalTimestamp": arrived,
            "Data": b'{"page": "/"}',
            "PartitionKey": "v-1",
        },
        "shardId-000000000000",
        "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
        "us-east-1",
        "arn:aws:iam::123456789012:role/r",
    )
    assert record.pop(_SHARD) == "shardId-000000000000"  # removed before invocation
    parse(event={"Records": [record]}, model=KinesisDataStreamModel)
    chalice = _chalice_event("kinesis")["Records"][0]
    assert _keys(record) == _keys(chalice)
    assert set(record["kinesis"]) == set(chalice["kinesis"])
    assert base64.b64decode(record["kinesis"]["data"]) == b'{"page": "/"}'
    assert record["kinesis"]["approximateArrivalTimestamp"] == arrived.timestamp()
    assert record["eventID"] == "shardId-000000000000:4959"


def _settings() -> ProjectSettings:
    return ProjectSettings({}, {}, {}, {}, {})


def test_the_environment_names_tables_by_variable_and_resources_by_arn() -> None:
    needed = needed_resources(
        _settings(),
        {
            "stage local": {
                "TABLE_NAME": "orders",
                "AUDIT_TABLE": "audit",
                "LOOKUP": "arn:aws:dynamodb:us-east-1:123456789012:table/lookup/stream/x",
                "JOBS_QUEUE_ARN": QUEUE_ARN,
                "TOPIC": "arn:aws:sns:us-east-1:123456789012:alerts",
                "CLICKS": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
                "MEDIA": "arn:aws:s3:::media",
                "TABLES_NOTE": "not a table",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:8002",
            }
        },
    )
    assert {(n.kind, n.name) for n in needed} == {
        ("table", "orders"),
        ("table", "audit"),
        ("table", "lookup"),
        ("queue", "jobs"),
        ("topic", "alerts"),
        ("kinesis", "clicks"),
        ("bucket", "media"),
    }


def test_the_missing_table_message_names_it_and_both_ways_to_supply_it() -> None:
    message = missing_message([Needed("table", "orders", "TABLE_NAME in stage local")])
    assert message.startswith("table 'orders' (TABLE_NAME in stage local): ")
    assert ".chalice/merge-template.json" in message and "--endpoint URL" in message


def test_a_queue_trigger_reads_the_queue_the_merge_template_names(tmp_path: Path) -> None:
    app = Chalice(app_name="q")

    @app.on_sqs_message(queue="by-decorator", batch_size=3, name="take")
    def take(event: Any) -> None:
        pass

    resources = {
        "Work": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "work-queue"}},
        "Take": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {
                    "TakeSqsEventSource": {
                        "Properties": {
                            "Queue": {"Fn::Sub": "${Work.Arn}"},
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        }
                    }
                }
            },
        },
    }
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "merge-template.json").write_text(json.dumps({"Resources": resources}))
    settings = ProjectSettings.load(tmp_path, app, None, {})
    trigger = settings.triggers.queues["take"]
    assert (trigger.queue, trigger.batch_size, trigger.report_batch_item_failures) == (
        "work-queue",
        3,
        True,
    )
    assert referenced_id({"Fn::Sub": "${Work.Arn}"}) == "Work"
    assert referenced_id({"Fn::Sub": "arn:${AWS::Partition}:sqs:${Work}"}) is None
