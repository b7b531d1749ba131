"""What the deployment configures, read from where the deployment reads it.

``chalice package --merge-template .chalice/merge-template.json`` builds the stack from
two sources: the app's decorators (Chalice's own SAM template) and the merge template,
whose dictionaries are merged over Chalice's key by key. The runtime reads the same two
sources and the Chalice config (``lambda_timeout``, ``lambda_memory_size``, per-function
environment), so nothing about a function's triggers is decided in ``local/``. Where
neither source says anything, AWS's documented default applies (each one cited below).

Resources named in the template (tables, queues) get a local name by the first rule that
applies:

1. a function's ``Environment.Variables`` binds a variable to the resource (``{"Ref": id}``
   or ``{"Fn::GetAtt": [id, "QueueName"]}``) and the stage sets that variable: the stage's
   value (so the app finds the resource under the name it is configured with);
2. the resource's own literal ``TableName`` / ``QueueName``;
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
    ) -> None:
        self.template = template
        self.functions = functions
        self.streams = streams
        self.queues = queues
        self.tables = tables

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
        return cls(template, functions, streams, queues, tables)

    def queue_name(self, expression: Any) -> str | None:
        return _queue_name(expression, {q.logical_id: q.name for q in self.queues.values()})


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
        literal = properties.get("TableName") or properties.get("QueueName")
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
        merged: dict[str, Any] = {
            **STREAM_DEFAULTS,
            "BatchSize": source.batch_size,
            "StartingPosition": source.starting_position,
            "MaximumBatchingWindowInSeconds": source.maximum_batching_window_in_seconds or 0,
        }
        # Chalice's event is named <Function>DynamodbEventSource; the merge template's
        # dictionary with that key is merged over it.
        events = _function_properties(resources, source.name).get("Events") or {}
        merged.update(
            (events.get(logical_id_of(source.name) + "DynamodbEventSource") or {}).get("Properties")
            or {}
        )
        criteria = merged.get("FilterCriteria") or {}
        on_failure = ((merged.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        streams[source.name] = StreamSettings(
            function=source.name,
            stream_arn=source.stream_arn,
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
    return streams


def stream_table(stream_arn: str) -> str | None:
    found = re.search(r":table/([^/]+)", stream_arn)
    return found.group(1) if found else None
