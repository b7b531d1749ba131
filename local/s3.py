"""S3 bucket → ``on_s3_event`` handlers, as S3 event notifications invoke Lambda.

S3 invokes the function asynchronously, one record per event (with-s3; Lambda's
asynchronous retries and destinations apply, :mod:`local.asyncinvoke`), for the event
types the notification names (``s3:ObjectCreated:*``, ``s3:ObjectRemoved:Delete`` …) and
only for keys that match its ``prefix`` and ``suffix`` filter rules
(notification-how-to-filtering).

Locally each function gets a queue configuration on the bucket (moto sends S3's event
messages to SQS for the named event types); :class:`BucketNotifications` drains the
queues, applies the key filters on the decoded key, and completes each record to the
documented structure (notification-content-structure, version 2.1): ``eventVersion``,
``eventSource`` ``aws:s3``, ``awsRegion``, ``eventTime`` (ISO-8601 with milliseconds and
``Z``), ``eventName`` (``ObjectCreated:Put``), ``userIdentity``, ``requestParameters``,
``responseElements``, and ``s3`` with ``s3SchemaVersion``, ``configurationId``,
``bucket`` (``name``, ``ownerIdentity``, ``arn``) and ``object`` (``key`` URL-encoded as
S3 sends it, slashes kept, ``size`` and ``eTag`` for created objects, ``sequencer``).

Example::

    notifications = BucketNotifications("media", triggers, sqs, s3, submit)
    notifications.step()   # in the runtime's pump loop
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from local.template import BucketTrigger

Submit = Callable[[str, dict[str, Any]], None]
Hop = Callable[[str], None]
QUEUE_PREFIX = "local-s3-"
# After an empty poll, the next one waits this long (real seconds).
IDLE_POLL_SECONDS = 0.2
LOCAL_PRINCIPAL = "AWS:LOCAL"


def key_matches(trigger: BucketTrigger, key: str) -> bool:
    """The notification's filter rules on the object key (as stored, not URL-encoded)."""
    return key.startswith(trigger.prefix or "") and key.endswith(trigger.suffix or "")


def s3_record(record: Mapping[str, Any], configuration_id: str, sequencer: str) -> dict[str, Any]:
    """An S3 event record (as moto sends it) completed to S3's documented structure."""
    s3 = dict(record.get("s3") or {})
    bucket = dict(s3.get("bucket") or {})
    bucket.setdefault("ownerIdentity", {"principalId": LOCAL_PRINCIPAL})
    obj = dict(s3.get("object") or {})
    event_name = str(record.get("eventName", ""))
    if event_name.startswith("ObjectRemoved"):
        # A removed object has no size or ETag in S3's record.
        obj.pop("size", None)
        obj.pop("eTag", None)
    # S3 sends the key URL-encoded as a form value, with "/" left as it is.
    obj["key"] = quote_plus(unquote_plus(str(obj.get("key", ""))), safe="/")
    obj["sequencer"] = sequencer
    request_id = uuid.uuid4().hex[:16].upper()
    return {
        "eventVersion": record.get("eventVersion", "2.1"),
        "eventSource": "aws:s3",
        "awsRegion": record.get("awsRegion", ""),
        "eventTime": _iso_millis(str(record.get("eventTime", ""))),
        "eventName": event_name,
        "userIdentity": {"principalId": LOCAL_PRINCIPAL},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": bucket,
            "object": obj,
        },
    }


def _iso_millis(moment: str) -> str:
    """``2026-12-01T11:00:00.123456`` (moto) → ``2026-12-01T11:00:00.123Z`` (S3)."""
    try:
        parsed = datetime.fromisoformat(moment.removesuffix("Z"))
    except ValueError:
        return moment
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


class BucketNotifications:
    """Every ``on_s3_event`` function of one bucket."""

    def __init__(
        self,
        bucket: str,
        triggers: list[BucketTrigger],
        sqs: Any,
        s3: Any,
        submit: Submit,
        on_hop: Hop | None = None,
    ) -> None:
        self.bucket = bucket
        self._sqs = sqs
        self._submit = submit
        self._hop = on_hop or (lambda line: None)
        self._queues: list[tuple[BucketTrigger, str]] = []
        self._sequence = itertools.count(1)
        self._next_poll = 0.0
        configurations = []
        for trigger in triggers:
            url = sqs.create_queue(QueueName=QUEUE_PREFIX + trigger.function)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self._queues.append((trigger, url))
            configurations.append(
                {"Id": trigger.function, "QueueArn": arn, "Events": list(trigger.events)}
            )
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations}
        )

    idle = True  # each event is handed on at once; AsyncInvocations tracks the rest

    def step(self) -> bool:
        if time.monotonic() < self._next_poll:
            return False  # polled empty a moment ago: spare the embedded AWS
        worked = False
        for trigger, url in self._queues:
            page = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            for message in messages:
                worked = True
                self._hand_on(trigger, json.loads(message["Body"]))
            if messages:
                self._sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
        if not worked:
            self._next_poll = time.monotonic() + IDLE_POLL_SECONDS
        return worked

    def _hand_on(self, trigger: BucketTrigger, body: Mapping[str, Any]) -> None:
        for record in body.get("Records") or []:
            key = unquote_plus(str(((record.get("s3") or {}).get("object") or {}).get("key", "")))
            if not key_matches(trigger, key):
                continue
            sequencer = f"{next(self._sequence):016X}"
            shaped = s3_record(record, trigger.function, sequencer)
            self._hop(f"s3 {self.bucket} {shaped['eventName']} {key} → {trigger.function}")
            self._submit(trigger.function, {"Records": [shaped]})

    def close(self) -> None:
        """Nothing runs on its own."""
