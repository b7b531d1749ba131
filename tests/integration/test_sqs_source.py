"""``on_sqs_message`` on the local runtime follows Lambda's and SQS's documented rules.

A real ``python -m local run`` process serves the sample app in ``apps/queues``; its
handlers write what they received to a table declared only in the app's merge template.
The rules, from the AWS documentation:

* with-sqs (the example event): ``messageId``, ``receiptHandle``, ``body``,
  ``attributes``, ``messageAttributes``, ``md5OfBody``, ``eventSource`` ``aws:sqs``,
  ``eventSourceARN``, ``awsRegion``; a batch holds at most ``BatchSize`` messages;
* services-sqs-batchfailurereporting: with ``ReportBatchItemFailures`` only the
  reported messages return to the queue; without it the response is ignored and the
  batch is deleted;
* SQS dead-letter queues: a message received ``maxReceiveCount`` times moves to the
  queue's dead-letter queue (the queue's ``RedrivePolicy``); it is visible again once
  its visibility timeout ends;
* python-context: the context object; the function's own environment variables.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsModel

from tests.integration.sources_support import SampleApp, records

LEDGER = "queue-ledger"


@pytest.fixture(scope="module")
def queues() -> Iterator[SampleApp]:
    app = SampleApp("queues")
    try:
        yield app
    finally:
        app.stop()


def _url(app: SampleApp, name: str) -> str:
    url: str = app.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return url


def _bodies(entries: Any) -> list[str]:
    return [r["body"] for r in records(entries)]


def test_a_batch_reaches_the_handler_in_sqs_shape_with_a_real_context(
    queues: SampleApp,
) -> None:
    sqs = queues.client("sqs")
    bodies = [f"job-{i}" for i in range(7)]
    sqs.send_message_batch(
        QueueUrl=_url(queues, "order-jobs"),
        Entries=[
            {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": {"priority": {"DataType": "String", "StringValue": "high"}},
            }
            for i, body in enumerate(bodies)
        ],
    )
    entries = queues.wait_for(LEDGER, "take_jobs", lambda found: set(bodies) <= set(_bodies(found)))
    for entry in entries:
        parse(event=entry.event, model=SqsModel)  # Powertools' model of Lambda's SQS event
        assert 1 <= len(entry.event["Records"]) <= 5  # BatchSize
        context = entry.context
        assert context["function_name"] == "order-queues-local-take_jobs"
        assert context["invoked_function_arn"].endswith(":function:order-queues-local-take_jobs")
        assert context["memory_limit_in_mb"] == 256
        assert 0 < context["remaining_ms"] <= 60_000
        assert entry.shift == "day"  # lambda_functions.take_jobs.environment_variables
    mine = [r for r in records(entries) if r["body"] in bodies]
    assert sorted(r["body"] for r in mine) == sorted(bodies)  # each one once
    for record in mine:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:order-jobs"
        assert record["awsRegion"] == "us-east-1"
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
            record["attributes"]
        )
        assert record["messageAttributes"] == {
            "priority": {
                "stringValue": "high",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        }


def test_a_reported_failure_returns_after_the_visibility_timeout_then_goes_to_the_dlq(
    queues: SampleApp,
) -> None:
    sqs = queues.client("sqs")
    sqs.send_message(QueueUrl=_url(queues, "order-jobs"), MessageBody="poison")
    sqs.send_message(QueueUrl=_url(queues, "order-jobs"), MessageBody="healthy")
    # maxReceiveCount 2: received twice (the second time after its 20 s visibility
    # timeout), then SQS moves it to the dead-letter queue.
    entries = queues.wait_for(
        LEDGER, "take_jobs", lambda found: _bodies(found).count("poison") >= 2
    )
    counts = sorted(
        r["attributes"]["ApproximateReceiveCount"]
        for r in records(entries)
        if r["body"] == "poison"
    )
    assert counts == ["1", "2"]
    dlq = _url(queues, "order-jobs-dead-letters")
    moved: list[str] = []
    deadline = time.monotonic() + 60
    while not moved and time.monotonic() < deadline:
        page = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)
        moved = [m["Body"] for m in page.get("Messages", [])]
    assert moved == ["poison"], "\n".join(queues.proc.lines[-30:])
    # The healthy message of the same batch was deleted: handled once, never again.
    assert _bodies(queues.entries(LEDGER, "take_jobs")).count("healthy") == 1
    assert _bodies(queues.entries(LEDGER, "take_jobs")).count("poison") == 2


def test_without_report_batch_item_failures_a_returned_failure_list_is_ignored(
    queues: SampleApp,
) -> None:
    sqs = queues.client("sqs")
    url = _url(queues, "plain-jobs")  # named only by the decorator: created with defaults
    sqs.send_message(QueueUrl=url, MessageBody="plain-1")
    sqs.send_message(QueueUrl=url, MessageBody="plain-2")
    entries = queues.wait_for(
        LEDGER, "take_plain", lambda found: {"plain-1", "plain-2"} <= set(_bodies(found))
    )
    assert all(entry.shift == "night" for entry in entries)
    # The handler reported every message as failed; without ReportBatchItemFailures the
    # batch succeeded, so the messages are deleted (none waits for its visibility timeout).
    deadline = time.monotonic() + 30
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        left = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == 0
    assert attributes["VisibilityTimeout"] == "30"  # SQS's default: nothing was guessed


def test_a_function_error_returns_the_whole_batch_after_the_visibility_timeout(
    queues: SampleApp,
) -> None:
    sqs = queues.client("sqs")
    sqs.send_message(QueueUrl=_url(queues, "order-jobs"), MessageBody="crash")
    entries = queues.wait_for(LEDGER, "take_jobs", lambda found: _bodies(found).count("crash") >= 2)
    counts = sorted(
        r["attributes"]["ApproximateReceiveCount"] for r in records(entries) if r["body"] == "crash"
    )
    assert counts == ["1", "2"]
    dlq = _url(queues, "order-jobs-dead-letters")
    moved: list[str] = []
    deadline = time.monotonic() + 60
    while "crash" not in moved and time.monotonic() < deadline:
        page = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)
        moved += [m["Body"] for m in page.get("Messages", [])]
    assert "crash" in moved, "\n".join(queues.proc.lines[-30:])
    queues.proc.wait_for(r"take_jobs raised on 1 message\(s\): RuntimeError: a job crashed")
