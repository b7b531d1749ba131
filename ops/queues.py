"""SQS queues that hold failures: find them by name, peek, take, resolve to order ids.

Listing never consumes: messages are received with ``VisibilityTimeout=0``, so they are
visible again at once. AWS still counts each receive: "A message that isn't deleted ...
before the visibility timeout expires counts as a failed receive. Depending on the
configuration of the queue, the message might be sent to the dead-letter queue"
(ReceiveMessage, VisibilityTimeout,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html).
A queue's own DLQ (its ``RedrivePolicy``) is listed too, so nothing is lost from view.

A redrive *takes* messages (received with a visibility timeout long enough to work on
them), deletes each one only after all its orders were published, and releases the rest
(``ChangeMessageVisibility`` 0).

Message bodies understood:

* the stream on-failure record (``DDBStreamBatchInfo``), resolved to order ids by reading
  the stream (:meth:`chalicelib.recovery.StreamRecovery.orders_in`) while it holds them;
* an asynchronous Lambda on-failure destination record (``requestPayload`` with the
  aggregated event);
* an EventBridge rule target's DLQ message (the aggregated event itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import ACCESS_CODES
from chalicelib.recovery import LOST_RANGE_ERRORS, MalformedMessage, StreamRange

MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)
PEEK_LIMIT = 100
# How long a redrive holds the messages it took (seconds).
TAKE_VISIBILITY = 300


@dataclass
class Queue:
    """One failure queue as found: ``url`` is ``None`` when it does not exist."""

    source: str
    name: str
    url: str | None
    note: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Resolution:
    """What one message concerns."""

    kind: str
    order_ids: list[str]
    resolved: bool
    note: str | None = None
    span: StreamRange | None = None


def find_queues(sqs: Any, named: list[tuple[str, str]]) -> list[Queue]:
    """Each named queue (and the DLQ its redrive policy names), or a note that it is missing."""
    found: list[Queue] = []
    seen: set[str] = set()
    pending = list(named)
    while pending:
        source, name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        queue = _lookup(sqs, source, name)
        found.append(queue)
        dlq = _dead_letter_target(queue)
        if dlq:
            pending.append((f"dlq-of-{name}", dlq))
    return found


def _lookup(sqs: Any, source: str, name: str) -> Queue:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if code in ACCESS_CODES:
            return Queue(source, name, None, f"cannot be read ({code}; skipped)")
        if code not in MISSING_QUEUE_CODES:
            raise
        return Queue(source, name, None, "no such queue (skipped)")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get(
        "Attributes", {}
    )
    return Queue(source, name, url, None, dict(attributes))


def _dead_letter_target(queue: Queue) -> str | None:
    policy = queue.attributes.get("RedrivePolicy")
    if not policy:
        return None
    try:
        arn = json.loads(policy)["deadLetterTargetArn"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(arn).rsplit(":", 1)[-1] or None


def peek(sqs: Any, url: str, limit: int = PEEK_LIMIT) -> list[dict[str, Any]]:
    """Up to ``limit`` messages, left in the queue (``VisibilityTimeout=0``)."""
    return _receive(sqs, url, limit, visibility=0)


def take(sqs: Any, url: str, limit: int = PEEK_LIMIT) -> list[dict[str, Any]]:
    """Up to ``limit`` messages, hidden from other consumers while a redrive works."""
    return _receive(sqs, url, limit, visibility=TAKE_VISIBILITY)


def _receive(sqs: Any, url: str, limit: int, visibility: int) -> list[dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}
    for _ in range(limit // 10 + 3):
        page = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in page if m["MessageId"] not in messages]
        for message in fresh:
            messages[message["MessageId"]] = message
        if not fresh or len(messages) >= limit:
            break
    return list(messages.values())[:limit]


def release(sqs: Any, url: str, message: dict[str, Any]) -> None:
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )


def delete(sqs: Any, url: str, message: dict[str, Any]) -> None:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def resolve(body: str, orders_in: Callable[[StreamRange], list[str]]) -> Resolution:
    """The orders one message concerns; ``orders_in`` reads a stream range."""
    try:
        span = StreamRange.from_message(body)
    except MalformedMessage:
        return _event_message(body)
    try:
        order_ids = orders_in(span)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if code not in LOST_RANGE_ERRORS:
            raise
        note = f"the stream no longer holds this range ({code}); its orders are unknown"
        return Resolution("stream-range", [], False, note, span)
    return Resolution("stream-range", order_ids, True, None, span)


def _event_message(body: str) -> Resolution:
    try:
        document = json.loads(body)
    except ValueError:
        return Resolution("unknown", [], False, "not JSON; cannot tell which order")
    if isinstance(document, dict) and isinstance(document.get("requestPayload"), dict):
        order_id = _order_of_event(document["requestPayload"])
        kind = "lambda-destination"
    else:
        order_id = _order_of_event(document)
        kind = "event"
    if order_id is None:
        return Resolution("unknown", [], False, "names no order")
    return Resolution(kind, [order_id], True)


def _order_of_event(document: Any) -> str | None:
    if not isinstance(document, dict):
        return None
    detail = document.get("detail")
    order_id = detail.get("OrderID") if isinstance(detail, dict) else None
    return order_id if isinstance(order_id, str) and order_id else None
