"""``on_sns_message`` on the local runtime: SNS's envelope, subject and attributes.

A real ``python -m local run`` process serves the sample app in ``apps/topics``; the test
publishes to its topics and reads what the handlers wrote. The rules (with-sns, the
example event): SNS invokes the function asynchronously with one message per event,
``EventSource`` ``aws:sns``, ``EventVersion`` ``1.0``, ``EventSubscriptionArn``, and
``Sns`` with ``Type`` ``Notification``, ``MessageId``, ``TopicArn``, ``Subject``,
``Message``, ``Timestamp``, ``SignatureVersion``, ``Signature``, ``SigningCertUrl``,
``UnsubscribeUrl`` and ``MessageAttributes`` (``Type``, ``Value``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SnsModel

from tests.integration.sources_support import SampleApp, records

NOTES = "alert-notes"


@pytest.fixture(scope="module")
def topics() -> Iterator[SampleApp]:
    app = SampleApp("topics")
    try:
        yield app
    finally:
        app.stop()


def _topic_arn(app: SampleApp, name: str) -> str:
    arns: list[str] = [t["TopicArn"] for t in app.client("sns").list_topics()["Topics"]]
    (arn,) = [a for a in arns if a.endswith(f":{name}")]
    return arn


def test_a_published_message_reaches_the_handler_in_snss_envelope(topics: SampleApp) -> None:
    arn = _topic_arn(topics, "stock-alerts")
    published = topics.client("sns").publish(
        TopicArn=arn,
        Message='{"sku": "A-7", "left": 2}',
        Subject="Low stock",
        MessageAttributes={
            "warehouse": {"DataType": "String", "StringValue": "north"},
            "left": {"DataType": "Number", "StringValue": "2"},
        },
    )
    (entry,) = topics.wait_for(NOTES, "on_alert", lambda found: len(found) >= 1)
    parse(event=entry.event, model=SnsModel)  # Powertools' model of Lambda's SNS event
    (record,) = entry.event["Records"]  # one message per invocation
    assert record["EventSource"] == "aws:sns"
    assert record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"].startswith(arn + ":")
    sns = record["Sns"]
    assert sns["Type"] == "Notification"
    assert sns["MessageId"] == published["MessageId"]
    assert sns["TopicArn"] == arn
    assert (sns["Subject"], sns["Message"]) == ("Low stock", '{"sku": "A-7", "left": 2}')
    assert sns["MessageAttributes"] == {
        "warehouse": {"Type": "String", "Value": "north"},
        "left": {"Type": "Number", "Value": "2"},
    }
    assert sns["Timestamp"].endswith("Z")
    assert {"SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl"} <= set(sns)
    assert entry.context["subject"] == "Low stock"  # Chalice's SNSEvent reads the envelope
    assert entry.context["function_name"] == "stock-alerts-local-on_alert"
    assert 0 < entry.context["remaining_ms"] <= 60_000
    assert entry.shift == "stock"


def test_a_topic_named_only_by_its_decorator_is_created_and_delivers(topics: SampleApp) -> None:
    arn = _topic_arn(topics, "audit-trail")
    topics.client("sns").publish(TopicArn=arn, Message="stock counted")
    (entry,) = topics.wait_for(NOTES, "on_audit", lambda found: len(found) >= 1)
    (record,) = records([entry])
    assert record["Sns"]["Message"] == "stock counted"
    assert record["Sns"]["Subject"] is None  # published without one
    assert record["Sns"]["MessageAttributes"] == {}
    assert entry.shift == "audit"
