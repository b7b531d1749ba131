"""SQS queue → ``on_sqs_message`` handlers, as Lambda's SQS event source mapping runs.

From the Lambda developer guide (with-sqs, services-sqs-configure, services-sqs-errors,
services-sqs-batchfailurereporting) and the SQS developer guide (visibility timeout,
dead-letter queues):

* pollers read the queue and invoke the function synchronously with a batch of up to
  ``BatchSize`` messages, gathered for up to ``MaximumBatchingWindowInSeconds`` (with no
  window, what one receive returns); up to ``ScalingConfig.MaximumConcurrency`` batches
  (default here: 5, Lambda's starting number of pollers) are in flight at once;
* a received message is invisible for the queue's ``VisibilityTimeout``; a batch the
  function handled is deleted;
* on a function error (an exception or a timeout) nothing is deleted: the messages come
  back when their visibility timeout ends, and SQS itself moves a message to the queue's
  dead-letter queue once it was received ``maxReceiveCount`` times (the queue's
  ``RedrivePolicy``; moto plays this redrive on receive);
* with ``ReportBatchItemFailures`` in ``FunctionResponseTypes`` only the messages not
  named in ``batchItemFailures`` are deleted; an identifier that is empty or names no
  message of the batch fails the whole batch. Without it the response is ignored;
* each record has the shape of the guide's example event: ``messageId``,
  ``receiptHandle``, ``body``, ``attributes`` (``ApproximateReceiveCount``,
  ``SentTimestamp``, ``SenderId``, ``ApproximateFirstReceiveTimestamp``, …),
  ``messageAttributes`` (``stringValue``/``binaryValue``, ``stringListValues``,
  ``binaryListValues``, ``dataType``), ``md5OfBody``, ``eventSource`` ``aws:sqs``,
  ``eventSourceARN``, ``awsRegion``.

Example::

    mapping = QueueMapping(trigger, functions, sqs, queue_url, queue_arn, "us-east-1",
                           visibility_seconds=30)
    mapping.start()   # pollers in their own threads
    mapping.close()
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from local.lambdas import Functions, Outcome
from local.template import QueueTrigger

Hop = Callable[[str], None]
DEFAULT_POLLERS = 5
# The system attributes Lambda passes on (the guide's example and the SQS attribute list).
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)
# One ReceiveMessage returns at most 10 messages.
RECEIVE_LIMIT = 10
LONG_POLL_SECONDS = 1


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ``ReceiveMessage`` message as Lambda hands it to a function."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: attributes[k] for k in RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: _attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {"stringListValues": [], "binaryListValues": []}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    shaped["dataType"] = value.get("DataType", "String")
    return shaped


def failed_message_ids(response: Any, batch_ids: set[str]) -> set[str] | None:
    """The reported message ids; None when the whole batch failed (an identifier that is
    missing, empty or names no message of the batch). An empty list is full success."""
    if not isinstance(response, dict):
        return set()
    failed: set[str] = set()
    for item in response.get("batchItemFailures") or []:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or str(identifier) not in batch_ids:
            return None
        failed.add(str(identifier))
    return failed


class QueueMapping:
    """One ``on_sqs_message`` function fed from one queue by its own poller threads."""

    def __init__(
        self,
        trigger: QueueTrigger,
        functions: Functions,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        region: str,
        visibility_seconds: float,
        on_hop: Hop | None = None,
    ) -> None:
        self.trigger = trigger
        self.name = trigger.function
        self._functions = functions
        self._clock = functions.clock
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._region = region
        # On the runtime's clock: a scaled 360 s timeout passes in 6 real seconds at 60x.
        self._visibility = max(1, round(self._clock.real(visibility_seconds)))
        self._hop = on_hop or (lambda line: None)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()
        self.pollers = trigger.maximum_concurrency or DEFAULT_POLLERS

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._busy == 0

    def step(self) -> bool:
        """Nothing to do in the pump: the pollers run in their own threads."""
        return False

    def start(self) -> None:
        for index in range(self.pollers):
            thread = threading.Thread(
                target=self._poll, name=f"sqs-{self.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop polling; a poller still in a long poll or a handler is left to end on its
        own (daemon threads), so stopping the runtime never waits long for them."""
        self._stop.set()
        deadline = time.monotonic() + LONG_POLL_SECONDS + 1
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._gather()
                if batch:
                    self.deliver(batch)
            except Exception as err:  # noqa: BLE001 - keep polling; say what broke
                if self._stop.is_set():
                    return
                self._hop(f"sqs {self.trigger.queue} → {self.name}: poll error: {err}")
                self._stop.wait(1.0)

    def _receive(self, limit: int, wait: int) -> list[dict[str, Any]]:
        page = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=max(1, min(RECEIVE_LIMIT, limit)),
            WaitTimeSeconds=wait,
            VisibilityTimeout=self._visibility,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = page.get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        """Up to ``BatchSize`` messages, gathered for up to the batching window."""
        size = self.trigger.batch_size
        batch = self._receive(size, LONG_POLL_SECONDS)
        if not batch or self.trigger.window_seconds <= 0:
            return batch
        with self._lock:
            self._busy += 1
        try:
            started = self._clock.monotonic()
            while len(batch) < size and not self._stop.is_set():
                if self._clock.monotonic() - started >= self.trigger.window_seconds:
                    break
                more = self._receive(size - len(batch), 0)
                batch.extend(more)
                if not more:
                    self._stop.wait(0.05)
        finally:
            with self._lock:
                self._busy -= 1
        return batch

    def deliver(self, messages: list[dict[str, Any]]) -> Outcome:
        """Invoke the function with one batch and delete what it handled."""
        with self._lock:
            self._busy += 1
        try:
            return self._deliver(messages)
        finally:
            with self._lock:
                self._busy -= 1

    def _deliver(self, messages: list[dict[str, Any]]) -> Outcome:
        records = [sqs_record(m, self._arn, self._region) for m in messages]
        self._hop(f"sqs {self.trigger.queue} → {self.name}: {len(records)} message(s)")
        outcome = self._functions.invoke(self.name, {"Records": records})
        if outcome.failed:
            self._hop(
                f"{self.name} raised on {len(records)} message(s): {outcome.error}; "
                "they return after the visibility timeout"
            )
            return outcome
        done = messages
        if self.trigger.report_batch_item_failures:
            failed = failed_message_ids(outcome.value, {m["MessageId"] for m in messages})
            if failed is None:
                self._hop(f"{self.name}: batchItemFailures named no message of the batch")
                return outcome
            done = [m for m in messages if m["MessageId"] not in failed]
            if failed:
                self._hop(f"{self.name}: {len(failed)} message(s) failed; they return later")
        self._delete(done)
        self._hop(f"{self.name} returned {outcome.value}")
        return outcome

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), RECEIVE_LIMIT):
            chunk = messages[start : start + RECEIVE_LIMIT]
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
