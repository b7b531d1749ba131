"""The queues that hold what the pipeline gave up on, and the generic redrive.

Found from the app's deployment settings (:class:`local.template.ProjectSettings`):

* a stream mapping's ``DestinationConfig.OnFailure`` queue (Lambda's on-failure record,
  ``DDBStreamBatchInfo``);
* a function's asynchronous on-failure destination (invocation record with
  ``requestPayload``) and its dead-letter queue (the event itself);
* an EventBridge rule target's ``DeadLetterConfig`` queue (the event itself);
* the dead-letter queue of any queue (its ``RedrivePolicy``).

Redrive does what an operator does by hand: a queue's dead letters go back to the
queue they came from (as SQS's own DLQ redrive moves them to the source queue); an
invocation record or a dead-lettered event is submitted again to its function
asynchronously; a stream on-failure record's records are read back from the stream
(``AT_SEQUENCE_NUMBER`` of ``startSequenceNumber`` up to ``endSequenceNumber``) and
handed to the mapping's function as one batch. The message is deleted only once that
worked; otherwise it is made visible again.

Reading never consumes: messages are received with ``VisibilityTimeout=0``, and only
when the queue's message count changed (every receive counts towards a queue's own
``maxReceiveCount``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from local.lambdas import Functions
from local.template import ProjectSettings

PEEK_LIMIT = 50
TAKE_VISIBILITY = 60


@dataclass(frozen=True)
class Holding:
    """One queue that holds failures: what it is for, and whose."""

    name: str
    kind: str  # stream-on-failure, async-on-failure, async-dlq, rule-dlq, queue-dlq
    owner: str  # the function, or the source queue of a queue-dlq
    label: str


def holding_queues(settings: ProjectSettings) -> list[Holding]:
    """Every failure destination and dead-letter queue of the app, once each."""
    found: dict[str, Holding] = {}

    def add(name: str | None, kind: str, owner: str, label: str) -> None:
        if name and name not in found:
            found[name] = Holding(name, kind, owner, label)

    for stream in settings.streams.values():
        add(stream.on_failure_queue, "stream-on-failure", stream.function, "stream on-failure")
    for function in settings.functions.values():
        add(function.invoke.on_failure_queue, "async-on-failure", function.name, "on-failure")
        add(function.invoke.dead_letter_queue, "async-dlq", function.name, "dead-letter queue")
        add(function.target.dead_letter_queue, "rule-dlq", function.name, "rule target DLQ")
    by_id = {queue.logical_id: queue for queue in settings.queues.values()}
    for queue in settings.queues.values():
        dlq = by_id.get(queue.redrive_to or "")
        if dlq is not None:
            add(dlq.name, "queue-dlq", queue.name, f"dead-letter queue of {queue.name}")
    return list(found.values())


class RedriveError(ValueError):
    """A redrive that cannot be done; the message says why (a 4xx for the UI)."""


class Queues:
    """Peeks at and redrives the holding queues over the runtime's own SQS client."""

    def __init__(
        self,
        sqs: Any,
        streams: Any,
        settings: ProjectSettings,
        functions: Functions,
        submit: Any,
        region: str,
    ) -> None:
        self._sqs = sqs
        self._streams = streams
        self._settings = settings
        self._functions = functions
        self._submit = submit  # AsyncInvocations.submit
        self._region = region
        self.holding = holding_queues(settings)
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    def _url(self, name: str) -> str | None:
        try:
            url: str = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except self._sqs.exceptions.QueueDoesNotExist:
            return None
        return url

    def snapshot(self) -> list[dict[str, Any]]:
        """Each holding queue with its messages (re-read only when its count changed)."""
        return [self._view(holding) for holding in self.holding]

    def _view(self, holding: Holding) -> dict[str, Any]:
        view: dict[str, Any] = {
            "name": holding.name,
            "kind": holding.kind,
            "owner": holding.owner,
            "label": holding.label,
        }
        url = self._url(holding.name)
        if url is None:
            return {**view, "exists": False, "count": 0, "messages": []}
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        hidden = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        with self._lock:
            count, messages = self._seen.get(holding.name, (-1, []))
        if count != visible + hidden:
            messages = [_message_view(m) for m in self._receive(url, PEEK_LIMIT, 0)]
            with self._lock:
                self._seen[holding.name] = (visible + hidden, messages)
        return {**view, "exists": True, "count": visible + hidden, "messages": messages}

    def _receive(self, url: str, limit: int, visibility: int) -> list[dict[str, Any]]:
        messages: dict[str, dict[str, Any]] = {}
        for _ in range(limit // 10 + 2):
            page = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=visibility,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in page if m["MessageId"] not in messages]
            messages.update((m["MessageId"], m) for m in fresh)
            if not fresh or len(messages) >= limit:
                break
        return list(messages.values())[:limit]

    def redrive(self, queue: str, message_id: str) -> dict[str, Any]:
        """Redrive one message of one holding queue; see the module docstring."""
        holding = next((h for h in self.holding if h.name == queue), None)
        if holding is None:
            raise RedriveError(
                f"unknown queue {queue!r}; expected one of "
                + ", ".join(h.name for h in self.holding)
            )
        url = self._url(queue)
        taken = self._receive(url, PEEK_LIMIT, TAKE_VISIBILITY) if url else []
        chosen = next((m for m in taken if m["MessageId"] == message_id), None)
        try:
            if chosen is None or url is None:
                raise RedriveError(f"no message {message_id!r} in {queue} (already redriven?)")
            detail = self._redrive_one(holding, str(chosen.get("Body", "")))
            self._sqs.delete_message(QueueUrl=url, ReceiptHandle=chosen["ReceiptHandle"])
            taken.remove(chosen)
        finally:
            for message in taken:
                self._sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            with self._lock:
                self._seen.pop(queue, None)
        return {"queue": queue, "messageId": message_id, "result": detail}

    def _redrive_one(self, holding: Holding, body: str) -> str:
        if holding.kind == "queue-dlq":
            target = self._url(holding.owner)
            if target is None:
                raise RedriveError(f"the source queue {holding.owner} does not exist")
            self._sqs.send_message(QueueUrl=target, MessageBody=body)
            return f"sent back to {holding.owner}"
        try:
            document = json.loads(body)
        except ValueError:
            raise RedriveError("the message is not JSON; nothing to re-submit") from None
        if not isinstance(document, dict):
            raise RedriveError("the message is not a JSON object; nothing to re-submit")
        if holding.kind == "stream-on-failure":
            return self._replay_stream_batch(holding.owner, document)
        event = document.get("requestPayload") if holding.kind == "async-on-failure" else document
        if not isinstance(event, dict):
            raise RedriveError("the invocation record has no requestPayload to re-submit")
        self._submit(holding.owner, event)
        return f"re-submitted to {holding.owner} (asynchronous invocation)"

    def _replay_stream_batch(self, function: str, document: dict[str, Any]) -> str:
        from local.streams import lambda_record

        info = document.get("DDBStreamBatchInfo")
        if not isinstance(info, dict):
            raise RedriveError("not a stream on-failure record (no DDBStreamBatchInfo)")
        try:
            iterator = self._streams.get_shard_iterator(
                StreamArn=info["streamArn"],
                ShardId=info["shardId"],
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=info["startSequenceNumber"],
            )["ShardIterator"]
        except (KeyError, self._streams.exceptions.ResourceNotFoundException) as err:
            raise RedriveError(f"the stream no longer holds this batch ({err})") from None
        end = int(info["endSequenceNumber"])
        records: list[dict[str, Any]] = []
        while iterator and len(records) < int(info.get("batchSize") or 10_000):
            page = self._streams.get_records(ShardIterator=iterator, Limit=100)
            batch = [
                r for r in page.get("Records", []) if int(r["dynamodb"]["SequenceNumber"]) <= end
            ]
            records += [lambda_record(r, info["streamArn"], self._region) for r in batch]
            if not page.get("Records") or len(batch) < len(page["Records"]):
                break
            iterator = page.get("NextShardIterator")
        if not records:
            raise RedriveError("the stream no longer holds this batch's records")
        outcome = self._functions.invoke(function, {"Records": records})
        if outcome.failed:
            raise RedriveError(f"{function} failed again: {outcome.error}")
        return f"{len(records)} record(s) handed to {function} again: {outcome.value}"


def _message_view(message: dict[str, Any]) -> dict[str, Any]:
    body = str(message.get("Body", ""))
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body
    attributes = message.get("Attributes") or {}
    return {
        "id": message["MessageId"],
        "body": parsed,
        "sentAt": int(attributes.get("SentTimestamp", 0)) / 1000 or None,
        "receiveCount": int(attributes.get("ApproximateReceiveCount", 0)),
    }
