"""The AWS resources the app's template declares, created on the local endpoint.

Tables, queues, topics, buckets and Kinesis streams come from the merge template
(:mod:`local.template`), the same definitions the deployment creates; nothing here knows
the app. Resources named only by a decorator (``on_sqs_message(queue=...)``,
``on_sns_message(topic=...)``, ``on_s3_event(bucket=...)``,
``on_kinesis_record(stream=...)``) or by an ARN in the environment are created with AWS's
defaults: they have no schema to guess. A table has one (its keys), so a table that is
named but declared nowhere stops start-up (:class:`MissingResource`) unless it already
exists on the endpoint (``--endpoint``).

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
from dataclasses import dataclass, field
from typing import Any

from local.template import (
    MERGE_TEMPLATE,
    Needed,
    ProjectSettings,
    QueueSpec,
    ResourceSpec,
    TableSpec,
)


class MissingResource(RuntimeError):
    """A resource the app names cannot be derived from anything the deployment reads."""


@dataclass(frozen=True)
class ResourceClients:
    dynamodb: Any
    sqs: Any
    sns: Any
    s3: Any
    kinesis: Any

    @classmethod
    def from_session(cls, session: Any, **client_kwargs: Any) -> ResourceClients:
        return cls(
            *(
                session.client(name, **client_kwargs)
                for name in ("dynamodb", "sqs", "sns", "s3", "kinesis")
            )
        )


@dataclass
class CreatedResources:
    """What :func:`create_resources` made (or found): local names → ARNs."""

    tables: dict[str, str | None] = field(default_factory=dict)  # name → stream ARN
    queues: dict[str, str] = field(default_factory=dict)  # name → URL
    topics: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    kinesis: dict[str, str] = field(default_factory=dict)


def missing_tables(dynamodb: Any, settings: ProjectSettings, needed: list[Needed]) -> list[Needed]:
    """The tables the app names that are neither declared nor on the endpoint."""
    declared = settings.names("table")
    wanted = [n for n in needed if n.kind == "table" and n.name not in declared]
    if not wanted:
        return []
    existing = set(_table_names(dynamodb))
    missing: dict[str, Needed] = {}
    for need in wanted:
        if need.name not in existing:
            missing.setdefault(need.name, need)
    return list(missing.values())


def missing_message(missing: list[Needed]) -> str:
    """One message naming each table that cannot be derived and the two ways to supply it."""
    named = "; ".join(f"table {n.name!r} ({n.named_by})" for n in missing)
    return (
        f"{named}: its key schema appears nowhere, so the runtime will not guess one. "
        f"Declare it in {MERGE_TEMPLATE} (an AWS::DynamoDB::Table with KeySchema and "
        "AttributeDefinitions, StreamSpecification for a stream), or create it yourself "
        "and run with --endpoint URL"
    )


def create_resources(
    clients: ResourceClients, settings: ProjectSettings, needed: list[Needed]
) -> CreatedResources:
    """Create every declared resource and every named one; raise :class:`MissingResource`
    (before creating anything) for a table that cannot be derived."""
    missing = missing_tables(clients.dynamodb, settings, needed)
    if missing:
        raise MissingResource(missing_message(missing))
    created = CreatedResources()
    for table in settings.tables.values():
        created.tables[table.name] = ensure_table(clients.dynamodb, table)
    queues = LocalQueues(clients.sqs)
    for queue in settings.queues.values():
        created.queues[queue.name] = queues.ensure(queue, settings.queues)
    specs = list(settings.resources.values())
    declared = {(spec.kind, spec.name) for spec in specs}
    specs += [
        ResourceSpec(need.kind, need.name, need.name)
        for need in needed
        if need.kind in ("topic", "bucket", "kinesis") and (need.kind, need.name) not in declared
    ]
    for spec in specs:
        _ensure(clients, spec, created)
    for need in needed:
        if need.kind == "queue" and need.name not in created.queues:
            # SQS names a FIFO queue by its suffix, and needs it declared as one.
            fifo = {"FifoQueue": "true"} if need.name.endswith(".fifo") else {}
            created.queues[need.name] = queues.url(need.name, fifo)
    return created


def _ensure(clients: ResourceClients, spec: ResourceSpec, created: CreatedResources) -> None:
    if spec.kind == "topic":
        created.topics[spec.name] = clients.sns.create_topic(Name=spec.name)["TopicArn"]
    elif spec.kind == "bucket":
        created.buckets[spec.name] = ensure_bucket(clients.s3, spec.name)
    elif spec.kind == "kinesis" and spec.name not in created.kinesis:
        created.kinesis[spec.name] = ensure_kinesis_stream(
            clients.kinesis, spec.name, spec.shard_count
        )


def ensure_bucket(s3: Any, name: str) -> str:
    """Create the bucket unless it exists (us-east-1: no location constraint)."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if name not in existing:
        s3.create_bucket(Bucket=name)
    return f"arn:aws:s3:::{name}"


def ensure_kinesis_stream(kinesis: Any, name: str, shards: int = 1) -> str:
    """Create the stream unless it exists; return its ARN once it is ACTIVE."""
    try:
        description = kinesis.describe_stream_summary(StreamName=name)
    except kinesis.exceptions.ResourceNotFoundException:
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name)
        description = kinesis.describe_stream_summary(StreamName=name)
    arn: str = description["StreamDescriptionSummary"]["StreamARN"]
    return arn


def _table_names(dynamodb: Any) -> list[str]:
    names: list[str] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        names.extend(page.get("TableNames", []))
    return names


def ensure_table(dynamodb: Any, spec: TableSpec) -> str | None:
    """Create the table unless it exists; return its stream ARN (None: no stream)."""
    existing = _table_names(dynamodb)
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
