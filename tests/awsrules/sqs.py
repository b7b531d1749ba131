"""Lambda's SQS event source mapping, enough to feed an ``on_sqs_message`` handler.

Rules played here:

* The function gets batches of up to ``BatchSize`` messages in Lambda's SQS event shape
  (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html).
* With ``ReportBatchItemFailures`` the function returns ``{"batchItemFailures":
  [{"itemIdentifier": "<messageId>"}]}``; Lambda deletes the other messages and the
  named ones become visible again; a function error returns the whole batch
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
* A message received ``maxReceiveCount`` times moves to the queue's dead-letter queue
  (redrive policy); here it is left on the queue and reported as stuck.

Example::

    source = SqsEventSource(sqs, queue_url, handler, batch_size=10)
    report = source.drain()
    report.invocations, report.stuck
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any]], Any]


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message as Lambda hands it to a function (the shape Chalice's
    ``generate_sqs_event`` builds, with the message's real id and receipt handle)."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
            "SenderId": attributes.get("SenderId", "sender-id"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", "0"
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


@dataclass
class SqsReport:
    invocations: int = 0
    responses: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)


@dataclass
class SqsEventSource:
    """Drains one queue into a handler."""

    sqs: Any
    queue_url: str
    handler: Handler
    batch_size: int = 10
    max_receive_count: int = 5
    region: str = "us-east-1"

    def drain(self) -> SqsReport:
        """Deliver until the queue is empty or every message left was received
        ``max_receive_count`` times."""
        report = SqsReport()
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        receives: dict[str, int] = {}
        while True:
            page = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                VisibilityTimeout=0,
                AttributeNames=["All"],
            )
            messages = [
                m
                for m in page.get("Messages", [])
                if receives.get(m["MessageId"], 0) < self.max_receive_count
            ]
            if not messages:
                report.stuck = sorted(receives.keys() & self._left())
                return report
            for message in messages:
                receives[message["MessageId"]] = receives.get(message["MessageId"], 0) + 1
            self._deliver(messages, arn, report)

    def _left(self) -> set[str]:
        page = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return {m["MessageId"] for m in page.get("Messages", [])}

    def _deliver(self, messages: list[dict[str, Any]], arn: str, report: SqsReport) -> None:
        event = {"Records": [sqs_record(m, arn, self.region) for m in messages]}
        report.invocations += 1
        try:
            response = self.handler(event)
        except Exception as err:  # noqa: BLE001 - a function error returns the batch
            report.errors.append(err)
            return
        report.responses.append(response)
        failed = {
            f.get("itemIdentifier")
            for f in (response or {}).get("batchItemFailures", [])
            if isinstance(f, dict)
        }
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
