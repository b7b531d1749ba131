"""What the deployment configures, read from where the deployment reads it.

``chalice package --merge-template .chalice/merge-template.json`` builds the stack from
two sources: the app's decorators (Chalice's own SAM template) and the merge template,
whose dictionaries are merged over Chalice's key by key. The runtime reads the same two
sources and the Chalice config (``lambda_timeout``, ``lambda_memory_size``, per-function
environment), so nothing about a function's triggers is decided in ``local/``. Where
neither source says anything, AWS's documented default applies (each one cited below).

Resources named in the template (tables, queues, topics, buckets, Kinesis streams) get a
local name by the first rule that applies:

1. a function's ``Environment.Variables`` binds a variable to the resource (``{"Ref": id}``
   or ``{"Fn::GetAtt": [id, "QueueName"]}``) and the stage sets that variable: the stage's
   value (so the app finds the resource under the name it is configured with);
2. the resource's own literal ``TableName`` / ``QueueName`` / ``TopicName`` /
   ``BucketName`` / ``Name``;
3. its logical id.

Example::

    project = ProjectSettings.load(Path("."), app, config)
    project.streams["aggregator"].maximum_retry_attempts   # 10, from the merge template
    project.functions["aggregator"].timeout_seconds         # 60, Chalice's default
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MERGE_TEMPLATE = Path(".chalice") / "merge-template.json"

# Lambda's defaults for a DynamoDB event source mapping (services-ddb-params: BatchSize
# 100, MaximumBatchingWindowInSeconds 0, ParallelizationFactor 1, BisectBatchOnFunctionError
# false, MaximumRetryAttempts -1 and MaximumRecordAgeInSeconds -1 meaning infinite).
STREAM_DEFAULTS: dict[str, Any] = {
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "ParallelizationFactor": 1,
    "BisectBatchOnFunctionError": False,
    "MaximumRetryAttempts": -1,
    "MaximumRecordAgeInSeconds": -1,
    "FunctionResponseTypes": [],
}
# Lambda's defaults for an SQS event source mapping (services-sqs-configure / SAM's SQS
# event: BatchSize 10, MaximumBatchingWindowInSeconds 0, no FunctionResponseTypes).
# Chalice passes its own batch_size (default 1) and window, which the merge template may
# override, as it does for streams.
SQS_DEFAULTS: dict[str, Any] = {
    "BatchSize": 10,
    "MaximumBatchingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
}
# An SQS queue's default visibility timeout (AWS::SQS::Queue VisibilityTimeout: 30 s).
QUEUE_DEFAULT_VISIBILITY_SECONDS = 30
# Asynchronous invocation (invocation-async-error-handling): by default Lambda retries a
# function error twice; an event is kept up to 6 hours.
ASYNC_DEFAULT_RETRIES = 2
ASYNC_DEFAULT_MAX_AGE_SECONDS = 6 * 3600
# A rule target's RetryPolicy (eb-rule-retry-policy): by default 24 hours and 185 attempts.
TARGET_DEFAULT_RETRIES = 185
TARGET_DEFAULT_MAX_AGE_SECONDS = 86400
# Chalice's defaults when config.json names no timeout or memory (chalice.constants).
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MEMORY_MB = 128


@dataclass(frozen=True)
class StreamSettings:
    """One ``on_dynamodb_record`` trigger as Lambda's event source mapping has it."""

    function: str
    stream_arn: str
    batch_size: int
    window_seconds: float
    starting_position: str
    parallelization_factor: int = 1
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1  # -1: until the record expires
    maximum_record_age_seconds: int = -1  # -1: until the record expires
    report_batch_item_failures: bool = False
    on_failure_queue: str | None = None  # local queue name
    filters: list[Any] = field(default_factory=list)

    def as_properties(self) -> dict[str, Any]:
        """The settings under the names of the SAM ``DynamoDB`` event properties."""
        return {
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.window_seconds,
            "StartingPosition": self.starting_position,
            "ParallelizationFactor": self.parallelization_factor,
            "BisectBatchOnFunctionError": self.bisect_on_error,
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumRecordAgeInSeconds": self.maximum_record_age_seconds,
            "FunctionResponseTypes": (
                ["ReportBatchItemFailures"] if self.report_batch_item_failures else []
            ),
            "OnFailureQueue": self.on_failure_queue,
            "Filters": self.filters,
        }


@dataclass(frozen=True)
class AsyncSettings:
    """A function's asynchronous invocation settings (EventInvokeConfig, DLQ)."""

    maximum_retry_attempts: int = ASYNC_DEFAULT_RETRIES
    maximum_event_age_seconds: int = ASYNC_DEFAULT_MAX_AGE_SECONDS
    on_failure_queue: str | None = None
    dead_letter_queue: str | None = None


@dataclass(frozen=True)
class TargetSettings:
    """A rule's target settings: state, bus, RetryPolicy and DeadLetterConfig."""

    enabled: bool = True
    event_bus: str = "default"
    maximum_retry_attempts: int = TARGET_DEFAULT_RETRIES
    maximum_event_age_seconds: int = TARGET_DEFAULT_MAX_AGE_SECONDS
    dead_letter_queue: str | None = None


@dataclass(frozen=True)
class FunctionSettings:
    name: str
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB
    environment: dict[str, str] = field(default_factory=dict)
    invoke: AsyncSettings = field(default_factory=AsyncSettings)
    target: TargetSettings = field(default_factory=TargetSettings)
    # ReservedConcurrentExecutions (Chalice's ``reserved_concurrency``); None: unreserved.
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    redrive_to: str | None = None  # logical id of the dead-letter queue
    max_receive_count: int | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    request: dict[str, Any]  # arguments of dynamodb.create_table


@dataclass(frozen=True)
class ResourceSpec:
    """A topic, a bucket or a Kinesis stream: a local name is all it needs (and a
    Kinesis stream its ``ShardCount``, 1 when the template says none)."""

    kind: str  # "topic", "bucket" or "kinesis"
    logical_id: str
    name: str
    shard_count: int = 1


@dataclass(frozen=True)
class QueueTrigger:
    """One ``on_sqs_message`` trigger as Lambda's SQS event source mapping has it."""

    function: str
    queue: str  # local queue name
    batch_size: int
    window_seconds: float
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None

    def as_properties(self) -> dict[str, Any]:
        """The settings under the names of the SAM ``SQS`` event properties."""
        return {
            "Queue": self.queue,
            "BatchSize": self.batch_size,
            "MaximumBatchingWindowInSeconds": self.window_seconds,
            "FunctionResponseTypes": (
                ["ReportBatchItemFailures"] if self.report_batch_item_failures else []
            ),
        }


@dataclass(frozen=True)
class TopicTrigger:
    """One ``on_sns_message`` subscription (SNS invokes the function asynchronously)."""

    function: str
    topic: str  # local topic name


@dataclass(frozen=True)
class BucketTrigger:
    """One ``on_s3_event`` notification (S3 invokes the function asynchronously)."""

    function: str
    bucket: str
    events: tuple[str, ...]
    prefix: str | None = None
    suffix: str | None = None


def read_merge_template(project_dir: Path) -> dict[str, Any]:
    path = project_dir / MERGE_TEMPLATE
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def logical_id_of(function_name: str) -> str:
    """The function's resource in Chalice's SAM template (the REST API's is APIHandler)."""
    from chalice.utils import to_cfn_resource_name

    if function_name == "api_handler":
        return "APIHandler"
    name: str = to_cfn_resource_name(function_name)
    return name


def referenced_id(expression: Any) -> str | None:
    """``Ref``/``Fn::GetAtt`` → the logical id it points at; a literal ARN → None."""
    if isinstance(expression, dict):
        if "Ref" in expression:
            return str(expression["Ref"])
        if "Fn::GetAtt" in expression:
            target = expression["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
        # ``{"Fn::Sub": "${Queue.Arn}"}``: a string that is one reference and nothing else.
        found = re.fullmatch(r"\$\{([A-Za-z0-9]+)(\.[A-Za-z]+)?\}", str(expression.get("Fn::Sub")))
        if found:
            return found.group(1)
    return None


class ProjectSettings:
    """Everything the runtime needs to know about the app's functions and resources."""

    def __init__(
        self,
        template: dict[str, Any],
        functions: dict[str, FunctionSettings],
        streams: dict[str, StreamSettings],
        queues: dict[str, QueueSpec],
        tables: dict[str, TableSpec],
        resources: dict[str, ResourceSpec] | None = None,
        triggers: EventTriggers | None = None,
    ) -> None:
        self.template = template
        self.functions = functions
        self.streams = streams
        self.queues = queues
        self.tables = tables
        # Topics, buckets and Kinesis streams, by logical id (template) or by
        # "<kind>:<name>" (named only by a decorator or an ARN in the environment).
        self.resources = resources or {}
        self.triggers = triggers or EventTriggers()

    @classmethod
    def load(
        cls,
        project_dir: Path,
        app: Any,
        config: Any = None,
        stage_env: dict[str, str] | None = None,
    ) -> ProjectSettings:
        """``config`` is Chalice's Config for the stage (None: no config.json settings)."""
        template = read_merge_template(project_dir)
        resources: dict[str, Any] = template.get("Resources", {})
        env = dict(stage_env if stage_env is not None else _stage_env(config))
        names = _local_names(resources, env)
        queues = {
            logical_id: _queue(logical_id, resource, names)
            for logical_id, resource in resources.items()
            if resource.get("Type") == "AWS::SQS::Queue"
        }
        tables = {
            logical_id: TableSpec(logical_id, names[logical_id], _table_request(resource, names))
            for logical_id, resource in resources.items()
            if resource.get("Type") == "AWS::DynamoDB::Table"
        }
        function_names = {source.name for source in app.event_sources}
        # @app.lambda_function functions and built-in authorizers are functions too.
        function_names |= {function.name for function in app.pure_lambda_functions}
        function_names |= {auth.name for auth in app.builtin_auth_handlers}
        if app.routes:
            function_names.add("api_handler")
        functions = {
            name: _function(name, config, resources, names) for name in sorted(function_names)
        }
        streams = _streams(app, resources, names)
        declared = {
            logical_id: _resource(logical_id, resource, names)
            for logical_id, resource in resources.items()
            if resource.get("Type") in _KINDS
        }
        triggers = _triggers(app, resources, names)
        return cls(template, functions, streams, queues, tables, declared, triggers)

    def names(self, kind: str) -> set[str]:
        """Local names of the declared resources of one kind (``table``, ``queue``,
        ``topic``, ``bucket``, ``kinesis``)."""
        if kind == "table":
            return {t.name for t in self.tables.values()}
        if kind == "queue":
            return {q.name for q in self.queues.values()}
        return {r.name for r in self.resources.values() if r.kind == kind}

    def queue_name(self, expression: Any) -> str | None:
        return _queue_name(expression, {q.logical_id: q.name for q in self.queues.values()})


@dataclass(frozen=True)
class EventTriggers:
    """The app's queue, topic, bucket and Kinesis triggers, by function name."""

    queues: dict[str, QueueTrigger] = field(default_factory=dict)
    topics: dict[str, TopicTrigger] = field(default_factory=dict)
    buckets: dict[str, BucketTrigger] = field(default_factory=dict)
    # Kinesis triggers as stream mappings; ``stream_arn`` holds the stream's local name.
    kinesis: dict[str, StreamSettings] = field(default_factory=dict)
    # What the template asks of these triggers that the runtime does not play.
    unsupported: list[str] = field(default_factory=list)


_KINDS = {
    "AWS::SNS::Topic": "topic",
    "AWS::S3::Bucket": "bucket",
    "AWS::Kinesis::Stream": "kinesis",
}


def _resource(logical_id: str, resource: dict[str, Any], names: dict[str, str]) -> ResourceSpec:
    properties = resource.get("Properties") or {}
    shards = properties.get("ShardCount")
    return ResourceSpec(
        _KINDS[resource["Type"]],
        logical_id,
        names[logical_id],
        int(shards) if isinstance(shards, int | str) else 1,
    )


def arn_name(value: str) -> str:
    """The resource name at the end of an ARN (or the value itself, if it is a name):
    ``arn:aws:sqs:us-east-1:123456789012:jobs`` → ``jobs``; ``...:stream/clicks`` →
    ``clicks``; ``arn:aws:s3:::media`` → ``media``."""
    return value.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _event_properties(
    resources: dict[str, Any], function: str, suffix: str, base: dict[str, Any]
) -> dict[str, Any]:
    """Chalice's event properties (``base``) with the merge template's dictionary of the
    same key (``<Function><suffix>``) merged over them, as ``chalice package`` does."""
    events = _function_properties(resources, function).get("Events") or {}
    merged = dict(base)
    merged.update((events.get(logical_id_of(function) + suffix) or {}).get("Properties") or {})
    return merged


def _triggers(app: Any, resources: dict[str, Any], names: dict[str, str]) -> EventTriggers:
    from chalice.app import KinesisEventConfig, S3EventConfig, SNSEventConfig, SQSEventConfig

    triggers = EventTriggers()
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig):
            triggers.queues[source.name] = _queue_trigger(source, resources, names)
            if _event_properties(resources, source.name, "SqsEventSource", {}).get(
                "FilterCriteria"
            ):
                triggers.unsupported.append(f"FilterCriteria of on_sqs_message {source.name}")
        elif isinstance(source, SNSEventConfig):
            triggers.topics[source.name] = TopicTrigger(source.name, arn_name(source.topic))
        elif isinstance(source, S3EventConfig):
            triggers.buckets[source.name] = BucketTrigger(
                source.name,
                source.bucket,
                tuple(source.events),
                source.prefix or None,
                source.suffix or None,
            )
        elif isinstance(source, KinesisEventConfig):
            triggers.kinesis[source.name] = _kinesis_trigger(source, resources, names)
    return triggers


def _queue_trigger(source: Any, resources: dict[str, Any], names: dict[str, str]) -> QueueTrigger:
    merged = _event_properties(
        resources,
        source.name,
        "SqsEventSource",
        {
            **SQS_DEFAULTS,
            "BatchSize": source.batch_size,
            "MaximumBatchingWindowInSeconds": source.maximum_batching_window_in_seconds or 0,
        },
    )
    # The merge template may name the queue itself (``Queue: ${StreamFailureQueue.Arn}``):
    # that is the queue the deployed mapping reads.
    queue = _queue_name(merged.get("Queue"), names) or arn_name(
        source.queue or source.queue_arn or ""
    )
    concurrency = (merged.get("ScalingConfig") or {}).get("MaximumConcurrency")
    return QueueTrigger(
        function=source.name,
        queue=queue,
        batch_size=int(merged["BatchSize"]),
        window_seconds=float(merged["MaximumBatchingWindowInSeconds"]),
        report_batch_item_failures="ReportBatchItemFailures"
        in (merged.get("FunctionResponseTypes") or []),
        maximum_concurrency=int(concurrency or source.maximum_concurrency or 0) or None,
    )


def _kinesis_trigger(
    source: Any, resources: dict[str, Any], names: dict[str, str]
) -> StreamSettings:
    merged = _event_properties(
        resources,
        source.name,
        "KinesisEventSource",
        {
            **STREAM_DEFAULTS,
            "BatchSize": source.batch_size,
            "StartingPosition": source.starting_position,
            "MaximumBatchingWindowInSeconds": source.maximum_batching_window_in_seconds or 0,
        },
    )
    stream = merged.get("Stream")
    target = referenced_id(stream)
    name = names.get(target, target) if target else None
    return _stream_settings(source.name, name or arn_name(source.stream), merged, names)


def _stage_env(config: Any) -> dict[str, str]:
    if config is None:
        return {}
    environment: dict[str, str] = dict(config.environment_variables)
    return environment


def _function_properties(resources: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = resources.get(logical_id_of(name), {}).get("Properties") or {}
    return properties


def _local_names(resources: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """Local name of every resource (see the module docstring for the rules)."""
    bound: dict[str, str] = {}
    for resource in resources.values():
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get(
            "Variables"
        ) or {}
        for variable, value in variables.items():
            target = referenced_id(value)
            if target and variable in env:
                bound.setdefault(target, env[variable].rstrip("/").rsplit("/", 1)[-1])
    names: dict[str, str] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        literal = next(
            (
                properties[key]
                for key in ("TableName", "QueueName", "TopicName", "BucketName", "Name")
                if isinstance(properties.get(key), str)
            ),
            None,
        )
        names[logical_id] = bound.get(logical_id) or (
            literal if isinstance(literal, str) else logical_id
        )
    return names


def _queue_name(expression: Any, names: dict[str, str]) -> str | None:
    """The local queue an ARN expression names (``Fn::GetAtt [Q, Arn]`` or an ARN)."""
    if expression is None:
        return None
    target = referenced_id(expression)
    if target is not None:
        return names.get(target, target)
    if isinstance(expression, str):
        return expression.rsplit(":", 1)[-1]
    return None


def _queue(logical_id: str, resource: dict[str, Any], names: dict[str, str]) -> QueueSpec:
    properties = resource.get("Properties") or {}
    attributes: dict[str, str] = {}
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
        if isinstance(properties.get(key), int | str):
            attributes[key] = str(properties[key])
    redrive = properties.get("RedrivePolicy") or {}
    target = redrive.get("deadLetterTargetArn")
    dlq = referenced_id(target) if target is not None else None
    if dlq is None and isinstance(target, str):
        dlq = target.rsplit(":", 1)[-1]
    count = redrive.get("maxReceiveCount")
    return QueueSpec(
        logical_id, names[logical_id], attributes, dlq, int(count) if count is not None else None
    )


def _table_request(resource: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    properties = resource.get("Properties") or {}
    request: dict[str, Any] = {
        key: properties[key]
        for key in (
            "KeySchema",
            "AttributeDefinitions",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
        )
        if key in properties
    }
    request["BillingMode"] = properties.get("BillingMode", "PAY_PER_REQUEST")
    if "ProvisionedThroughput" in properties:
        request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
        }
    return request


def _function(
    name: str, config: Any, resources: dict[str, Any], names: dict[str, str]
) -> FunctionSettings:
    scoped = config.scope(config.chalice_stage, name) if config is not None else None
    timeout = getattr(scoped, "lambda_timeout", None) or DEFAULT_TIMEOUT_SECONDS
    memory = getattr(scoped, "lambda_memory_size", None) or DEFAULT_MEMORY_MB
    environment = dict(scoped.environment_variables) if scoped is not None else {}
    properties = _function_properties(resources, name)
    if isinstance(properties.get("Timeout"), int):  # the merge template wins, as it does there
        timeout = properties["Timeout"]
    reserved = getattr(scoped, "reserved_concurrency", None)
    if isinstance(properties.get("ReservedConcurrentExecutions"), int):
        reserved = properties["ReservedConcurrentExecutions"]
    return FunctionSettings(
        name=name,
        timeout_seconds=float(timeout),
        memory_mb=int(memory),
        environment=environment,
        invoke=_async_settings(name, properties, resources, names),
        target=_target_settings(name, properties, names),
        reserved_concurrency=int(reserved) if reserved is not None else None,
    )


def _async_settings(
    name: str, properties: dict[str, Any], resources: dict[str, Any], names: dict[str, str]
) -> AsyncSettings:
    """SAM's ``EventInvokeConfig`` and ``DeadLetterQueue`` (or CloudFormation's
    ``DeadLetterConfig``) on the function, or an ``AWS::Lambda::EventInvokeConfig``."""
    config = dict(properties.get("EventInvokeConfig") or {})
    function_id = logical_id_of(name)
    for resource in resources.values():
        if resource.get("Type") == "AWS::Lambda::EventInvokeConfig":
            own = resource.get("Properties") or {}
            if referenced_id(own.get("FunctionName")) == function_id:
                config.update(own)
    on_failure = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    dlq = properties.get("DeadLetterQueue") or {}
    dlq_arn = dlq.get("TargetArn") or (properties.get("DeadLetterConfig") or {}).get("TargetArn")
    return AsyncSettings(
        maximum_retry_attempts=int(config.get("MaximumRetryAttempts", ASYNC_DEFAULT_RETRIES)),
        maximum_event_age_seconds=int(
            config.get("MaximumEventAgeInSeconds", ASYNC_DEFAULT_MAX_AGE_SECONDS)
        ),
        on_failure_queue=_queue_name(on_failure, names),
        dead_letter_queue=_queue_name(dlq_arn, names),
    )


def _target_settings(
    name: str, properties: dict[str, Any], names: dict[str, str]
) -> TargetSettings:
    """The function's rule: Chalice's ``<Function>Event`` (``on_cw_event``, ``schedule``)
    as the merge template extends it, or any ``CloudWatchEvent``/``EventBridgeRule``/
    ``Schedule`` event of the function."""
    events = properties.get("Events") or {}
    chalice_event = logical_id_of(name) + "Event"
    candidates = [events[chalice_event]] if chalice_event in events else []
    candidates += [
        event
        for key, event in events.items()
        if key != chalice_event
        and event.get("Type") in ("CloudWatchEvent", "EventBridgeRule", "Schedule")
    ]
    for event in candidates:
        own = event.get("Properties") or {}
        retry = own.get("RetryPolicy") or {}
        dead_letter = own.get("DeadLetterConfig") or {}
        enabled = own.get("State", "ENABLED") == "ENABLED" and own.get("Enabled", True) is not False
        return TargetSettings(
            enabled=enabled,
            event_bus=str(own.get("EventBusName", "default")),
            maximum_retry_attempts=int(retry.get("MaximumRetryAttempts", TARGET_DEFAULT_RETRIES)),
            maximum_event_age_seconds=int(
                retry.get("MaximumEventAgeInSeconds", TARGET_DEFAULT_MAX_AGE_SECONDS)
            ),
            dead_letter_queue=_queue_name(dead_letter.get("Arn"), names),
        )
    return TargetSettings()


def _streams(
    app: Any, resources: dict[str, Any], names: dict[str, str]
) -> dict[str, StreamSettings]:
    from chalice.app import DynamoDBEventConfig

    streams: dict[str, StreamSettings] = {}
    for source in app.event_sources:
        if not isinstance(source, DynamoDBEventConfig):
            continue
        # Chalice's event is named <Function>DynamodbEventSource; the merge template's
        # dictionary with that key is merged over it.
        merged = _event_properties(
            resources,
            source.name,
            "DynamodbEventSource",
            {
                **STREAM_DEFAULTS,
                "BatchSize": source.batch_size,
                "StartingPosition": source.starting_position,
                "MaximumBatchingWindowInSeconds": source.maximum_batching_window_in_seconds or 0,
            },
        )
        streams[source.name] = _stream_settings(source.name, source.stream_arn, merged, names)
    return streams


def _stream_settings(
    function: str, stream_arn: str, merged: dict[str, Any], names: dict[str, str]
) -> StreamSettings:
    """A stream mapping (DynamoDB or Kinesis: the same settings) from merged properties."""
    criteria = merged.get("FilterCriteria") or {}
    on_failure = ((merged.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return StreamSettings(
        function=function,
        stream_arn=stream_arn,
        batch_size=int(merged["BatchSize"]),
        window_seconds=float(merged["MaximumBatchingWindowInSeconds"]),
        starting_position=str(merged["StartingPosition"]),
        parallelization_factor=int(merged["ParallelizationFactor"]),
        bisect_on_error=bool(merged["BisectBatchOnFunctionError"]),
        maximum_retry_attempts=int(merged["MaximumRetryAttempts"]),
        maximum_record_age_seconds=int(merged["MaximumRecordAgeInSeconds"]),
        report_batch_item_failures="ReportBatchItemFailures"
        in (merged.get("FunctionResponseTypes") or []),
        on_failure_queue=_queue_name(on_failure, names),
        filters=[json.loads(f["Pattern"]) for f in criteria.get("Filters", [])],
    )


def stream_table(stream_arn: str) -> str | None:
    found = re.search(r":table/([^/]+)", stream_arn)
    return found.group(1) if found else None


# A stage variable that names a table: TABLE_NAME, ORDERS_TABLE, ORDERS_TABLE_NAME, TABLE.
_TABLE_VARIABLE = re.compile(r"(^|_)TABLE(_NAME)?$")
# An ARN's service and resource part: arn:aws:<service>:<region>:<account>:<resource>.
_ARN = re.compile(r"arn:aws[a-z-]*:(dynamodb|sqs|sns|kinesis|s3):[^:]*:[^:]*:(.+)")


@dataclass(frozen=True)
class Needed:
    """A resource the app names, and where it names it (for the start-up message)."""

    kind: str  # "table", "queue", "topic", "bucket" or "kinesis"
    name: str
    named_by: str


def needed_resources(
    settings: ProjectSettings, environments: dict[str, dict[str, str]]
) -> list[Needed]:
    """Every resource the app's decorators and environment name. ``environments`` maps a
    scope (``stage local``, ``lambda_functions.<name>``) to its variables: a variable
    named like a table (``TABLE_NAME``, ``*_TABLE``) names a table; a value that is a
    DynamoDB, SQS, SNS, Kinesis or S3 ARN names that resource."""
    needed: list[Needed] = []
    for stream in settings.streams.values():
        table = stream_table(stream.stream_arn)
        if table:
            needed.append(Needed("table", table, f"on_dynamodb_record of {stream.function}"))
    triggers = settings.triggers
    for queue in triggers.queues.values():
        needed.append(Needed("queue", queue.queue, f"on_sqs_message of {queue.function}"))
    for topic in triggers.topics.values():
        needed.append(Needed("topic", topic.topic, f"on_sns_message of {topic.function}"))
    for bucket in triggers.buckets.values():
        needed.append(Needed("bucket", bucket.bucket, f"on_s3_event of {bucket.function}"))
    for kinesis in triggers.kinesis.values():
        needed.append(
            Needed("kinesis", kinesis.stream_arn, f"on_kinesis_record of {kinesis.function}")
        )
    for scope, variables in environments.items():
        for key, value in sorted(variables.items()):
            found = _named_by_value(value)
            if found is None and _TABLE_VARIABLE.search(key) and value:
                found = ("table", value)
            if found is not None:
                needed.append(Needed(found[0], found[1], f"{key} in {scope}"))
    return needed


def _named_by_value(value: str) -> tuple[str, str] | None:
    """(kind, name) of the resource an ARN names; None for anything else."""
    found = _ARN.fullmatch(value.strip())
    if found is None:
        return None
    service, resource = found.groups()
    if service == "dynamodb":
        table = re.match(r"table/([^/]+)", resource)
        return ("table", table.group(1)) if table else None
    if service == "kinesis":
        stream = re.match(r"stream/([^/]+)$", resource)
        return ("kinesis", stream.group(1)) if stream else None
    if service == "s3":
        return ("bucket", resource) if "/" not in resource else None
    return ("queue" if service == "sqs" else "topic", resource)
