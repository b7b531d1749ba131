"""SNS topic → ``on_sns_message`` handlers, as SNS invokes Lambda.

SNS invokes a subscribed function asynchronously, one message per invocation (with-sns:
"Amazon SNS invokes your function asynchronously with an event that contains a message
and metadata"), so Lambda's asynchronous retries and destinations apply
(:mod:`local.asyncinvoke`).

Locally the topic gets one SQS subscription per function (moto delivers a topic's
messages to SQS in SNS's JSON envelope); :class:`TopicSubscription` drains it and shapes
each message as the guide's example event: ``EventSource`` ``aws:sns``, ``EventVersion``
``1.0``, ``EventSubscriptionArn`` and ``Sns`` with ``Type``, ``MessageId``, ``TopicArn``,
``Subject`` (null when the publisher gave none), ``Message``, ``Timestamp``,
``SignatureVersion``, ``Signature``, ``SigningCertUrl``, ``UnsubscribeUrl`` and
``MessageAttributes`` (``{name: {"Type": ..., "Value": ...}}``).

Example::

    subscription = TopicSubscription(trigger, sqs, sns, topic_arn, "us-east-1", submit)
    subscription.step()   # in the runtime's pump loop: every new message → submit()
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from local.template import TopicTrigger

Submit = Callable[[str, dict[str, Any]], None]
Hop = Callable[[str], None]
QUEUE_PREFIX = "local-sns-"
# After an empty poll, the next one waits this long (real seconds).
IDLE_POLL_SECONDS = 0.2


def sns_record(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """SNS's notification envelope (as delivered to SQS) as Lambda's SNS record."""
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": envelope.get("Type", "Notification"),
            "MessageId": envelope["MessageId"],
            "TopicArn": envelope["TopicArn"],
            "Subject": envelope.get("Subject") or None,
            "Message": envelope.get("Message", ""),
            "Timestamp": envelope.get("Timestamp", ""),
            "SignatureVersion": envelope.get("SignatureVersion", "1"),
            "Signature": envelope.get("Signature", ""),
            "SigningCertUrl": envelope.get("SigningCertURL") or envelope.get("SigningCertUrl", ""),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL") or envelope.get("UnsubscribeUrl", ""),
            "MessageAttributes": {
                name: {"Type": value.get("Type"), "Value": value.get("Value")}
                for name, value in (envelope.get("MessageAttributes") or {}).items()
            },
        },
    }


class TopicSubscription:
    """One function subscribed to one topic."""

    def __init__(
        self,
        trigger: TopicTrigger,
        sqs: Any,
        sns: Any,
        topic_arn: str,
        submit: Submit,
        on_hop: Hop | None = None,
    ) -> None:
        self.trigger = trigger
        self._sqs = sqs
        self._submit = submit
        self._hop = on_hop or (lambda line: None)
        self._next_poll = 0.0
        self._url = sqs.create_queue(QueueName=QUEUE_PREFIX + trigger.function)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.subscription_arn: str = sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    idle = True  # each message is handed on at once; AsyncInvocations tracks the rest

    def step(self) -> bool:
        """Hand every message published since the last call to the function."""
        if time.monotonic() < self._next_poll:
            return False  # polled empty a moment ago: spare the embedded AWS
        page = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10)
        messages = page.get("Messages", [])
        for message in messages:
            envelope = json.loads(message["Body"])
            if envelope.get("Type") != "Notification":
                continue
            record = sns_record(envelope, self.subscription_arn)
            self._hop(f"sns {self.trigger.topic} → {self.trigger.function}: 1 message")
            self._submit(self.trigger.function, {"Records": [record]})
        if not messages:
            self._next_poll = time.monotonic() + IDLE_POLL_SECONDS
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return bool(messages)

    def close(self) -> None:
        """Nothing runs on its own."""
