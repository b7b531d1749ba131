"""The AWS resources the app's template declares, created on the local endpoint.

Tables and queues come from the merge template (:mod:`local.template`), the same
definitions the deployment creates; nothing here knows the app.

Example::

    arn = ensure_table(dynamodb, settings.tables["EventsTable"])
    queues = LocalQueues(sqs)
    queues.ensure(settings.queues["StreamFailureQueue"], settings.queues)
    queues.send("StreamFailureQueue", {"DDBStreamBatchInfo": {...}})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from local.template import QueueSpec, TableSpec


def ensure_table(dynamodb: Any, spec: TableSpec) -> str | None:
    """Create the table unless it exists; return its stream ARN (None: no stream)."""
    existing = dynamodb.list_tables().get("TableNames", [])
    if spec.name not in existing:
        dynamodb.create_table(TableName=spec.name, **spec.request)
        dynamodb.get_waiter("table_exists").wait(TableName=spec.name)
    description = dynamodb.describe_table(TableName=spec.name)["Table"]
    arn: str | None = description.get("LatestStreamArn")
    return arn


class LocalQueues:
    """SQS queues by local name: created once, then sent to."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def ensure(self, spec: QueueSpec, all_specs: Mapping[str, QueueSpec]) -> str:
        attributes = dict(spec.attributes)
        if spec.redrive_to is not None:
            target = all_specs.get(spec.redrive_to)
            dlq_url = self.ensure(target, all_specs) if target else self.url(spec.redrive_to)
            arn = self._sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": spec.max_receive_count or 1}
            )
        return self.url(spec.name, attributes)

    def url(self, name: str, attributes: dict[str, str] | None = None) -> str:
        with self._lock:
            if name not in self._urls:
                self._urls[name] = self._sqs.create_queue(
                    QueueName=name, Attributes=attributes or {}
                )["QueueUrl"]
            return self._urls[name]

    def send(
        self, name: str, body: dict[str, Any], attributes: Mapping[str, str] | None = None
    ) -> None:
        """Send ``body`` as JSON, with ``attributes`` as String message attributes."""
        extra: dict[str, Any] = {}
        if attributes:
            extra["MessageAttributes"] = {
                key: {"DataType": "String", "StringValue": value}
                for key, value in attributes.items()
            }
        self._sqs.send_message(QueueUrl=self.url(name), MessageBody=json.dumps(body), **extra)
