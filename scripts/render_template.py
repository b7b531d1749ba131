"""Render the deployment's generated files from Python, so each fact has one source.

``.chalice/merge-template.json`` (committed)
    What ``chalice package --merge-template`` adds to Chalice's SAM template: the events
    table (:func:`chalicelib.table.cloudformation_properties`), the stream trigger's
    failure handling and filter, the queues that keep what AWS would otherwise drop (the
    stream on-failure queue and its DLQ, each rule target's DLQ, each rule target's
    asynchronous on-failure destination), their alarms and the functions' alarms, the
    ``stream_recovery`` trigger, a log group per function and one least-privilege policy
    per function role, all wired with ``Ref``/``Fn::GetAtt``/pseudo-parameters: no region,
    account, hand-copied name or ARN. It is the same for every stage; names derive from
    the stack name (one stack per stage).

``.chalice/policy-<stage>-<function>.json`` (git-ignored)
    The same policies with concrete ARNs for ``chalice deploy``: the ``iam_policy_file``
    of each function in ``.chalice/config.json``. Only ``scripts.bootstrap`` writes them,
    once the stage's table exists (:func:`stage_policy_files`), so no placeholder ARN is
    ever committed or deployed.

The rule patterns are not repeated here: Chalice emits them from ``app.py``, which builds
them with :mod:`chalicelib.rules` (``tests/deployment`` asserts that they match).

Remember when editing: a list in the merge template *replaces* Chalice's list (e.g. a
role's ``Policies``); dictionaries are merged key by key.

Usage::

    python -m scripts.render_template            # (re)write the merge template
    python -m scripts.render_template --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib import table
from chalicelib.config import ConfigurationError, Settings, load_settings
from chalicelib.observability import METRIC_NAMES
from chalicelib.rules import stream_filter_pattern
from scripts import dashboard as ops_view

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHALICE_DIR = PROJECT_DIR / ".chalice"
MERGE_TEMPLATE = "merge-template.json"

# A value in a policy or template: a plain string or a CloudFormation expression.
Expr = Any

# Logical ids of the resources the merge template adds.
TABLE_ID = "EventsTable"
ALARM_TOPIC_PARAMETER = "AlarmTopicArn"
HAS_ALARM_TOPIC = "HasAlarmTopic"
ITERATOR_AGE_ALARM_ID = "AggregatorIteratorAgeAlarm"

LOG_RETENTION_DAYS = 30
# The Lambda runtime is not set here: Chalice takes it from the interpreter that packages
# or deploys (``python3.13`` for this project's venv), so the deployed runtime is the one
# the tests ran on. tests/deployment asserts it on both deploy paths.
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum
# Lambda requires a queue's visibility timeout to be at least its consumer's timeout
# (Chalice's default: 60 s); AWS recommends six times it.
CONSUMED_QUEUE_VISIBILITY_SECONDS = 6 * 60
# A stream failure message that stream_recovery failed on this often goes to its DLQ.
MAX_RECEIVE_COUNT = 5

# Read a new stream from its start: nothing written before the mapping is enabled is lost.
STARTING_POSITION = "TRIM_HORIZON"
# Failure handling of the aggregator's event source mapping, applied by the template and
# by ``scripts.bootstrap --finish`` (the ``chalice deploy`` path). A record that still
# fails after 10 retries or 1 hour goes to the failure queue; the stream keeps it for
# 23 more hours, in which stream_recovery re-reads the range and re-aggregates it.
STREAM_FAILURE_HANDLING: dict[str, Any] = {
    # Up to 10 batches per shard at once. Lambda keeps records of one item in order.
    "ParallelizationFactor": 10,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": 10,
    "MaximumRecordAgeInSeconds": 3600,
}
# stream_recovery reports SQS partial batch failures (``batchItemFailures``).
RECOVERY_TRIGGER_SETTINGS: dict[str, Any] = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
# EventBridge's retries of a rule target (invoke_function failing, e.g. throttled), then
# the event goes to the target's DLQ. EventBridge allows at most 185 attempts / 24 h.
RULE_RETRY_POLICY: dict[str, int] = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
# Lambda's asynchronous invocation of a rule target: 2 retries on a function error (the
# Lambda maximum), up to 6 hours (its maximum), then the on-failure destination.
ASYNC_INVOKE_SETTINGS: dict[str, int] = {
    "MaximumRetryAttempts": 2,
    "MaximumEventAgeInSeconds": 21600,
}

# Alarms (template and bootstrap alike). Each notifies AlarmTopicArn (template) or
# --alarm-topic-arn (bootstrap) when given.
_ONE_MINUTE = {"Period": 60, "EvaluationPeriods": 1, "TreatMissingData": "notBreaching"}
QUEUE_DEPTH_ALARM: dict[str, Any] = {
    "Namespace": "AWS/SQS",
    "MetricName": "ApproximateNumberOfMessagesVisible",
    "Statistic": "Maximum",
    "Threshold": 0,
    "ComparisonOperator": "GreaterThanThreshold",
    **_ONE_MINUTE,
}
# A queue a function consumes is not empty for long unless its consumer is stuck.
QUEUE_AGE_ALARM: dict[str, Any] = {
    "Namespace": "AWS/SQS",
    "MetricName": "ApproximateAgeOfOldestMessage",
    "Statistic": "Maximum",
    "Threshold": 900,
    "ComparisonOperator": "GreaterThanThreshold",
    **_ONE_MINUTE,
}
FUNCTION_ERRORS_ALARM: dict[str, Any] = {
    "Namespace": "AWS/Lambda",
    "MetricName": "Errors",
    "Statistic": "Sum",
    "Threshold": 0,
    "ComparisonOperator": "GreaterThanThreshold",
    **_ONE_MINUTE,
}
# Milliseconds. Five minutes behind is far from the 1 h record age limit, and far from
# normal (a batch window of 1 s).
ITERATOR_AGE_ALARM: dict[str, Any] = {
    "Namespace": "AWS/Lambda",
    "MetricName": "IteratorAge",
    "Statistic": "Maximum",
    "Threshold": 300000,
    "ComparisonOperator": "GreaterThanThreshold",
    "Period": 60,
    "EvaluationPeriods": 3,
    "TreatMissingData": "notBreaching",
}
ITERATOR_AGE_DESCRIPTION = (
    "The aggregator is more than 5 minutes behind the events stream; records are retried "
    "or the function is throttled (docs/deploy.md)."
)

_QUERY = "dynamodb:Query"
_PUT = "dynamodb:PutItem"
_UPDATE = "dynamodb:UpdateItem"
# A parked order's dead-letter record, once it went out; a settled deadline bucket.
_DELETE = "dynamodb:DeleteItem"
# The sweep's look at the order records of a due bucket's orders (100 keys a call).
_BATCH_GET = "dynamodb:BatchGetItem"
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)
# IAM's service authorization reference lists dynamodb:ListStreams with no resource type
# (cfn-lint's copy of it, cfnlint/data/AdditionalSpecs/Policies.json, says the same), so
# only Resource "*" grants it. It returns stream ARNs only; reading a stream needs the
# stream-scoped actions above.
LIST_STREAMS = "dynamodb:ListStreams"
QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
)
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")

# Why a resource keeps a "*": AWS allows nothing narrower there.
WILDCARD_REASONS = {
    "logs": (
        "log-group:<this function's log group>:* - Lambda names its log streams at run "
        "time; the grant covers the streams of this function's own log group only."
    ),
    "streams": (
        "dynamodb:ListStreams on * - IAM defines no resource type for this action, so it "
        "can only be granted on *. It only lists stream ARNs; reading a stream needs "
        "DescribeStream/GetShardIterator/GetRecords, granted on the events stream only."
    ),
}

_STREAM_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):dynamodb:(?P<region>[^:]+):(?P<account>\d{12}):"
    r"table/(?P<table>[^/]+)/stream/(?P<label>.+)$"
)


# --- queues ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue that keeps what AWS would otherwise drop, and its alarm."""

    logical_id: str
    suffix: str  # on the chalice deploy path the queue is named "<table>-<suffix>"
    description: str  # the alarm's description
    consumed: bool = False  # a function consumes it: alarm on age rather than depth
    dead_letter: str | None = None  # logical id of its own DLQ (RedrivePolicy)

    @property
    def alarm_id(self) -> str:
        return self.logical_id + "Alarm"

    @property
    def alarm(self) -> dict[str, Any]:
        return QUEUE_AGE_ALARM if self.consumed else QUEUE_DEPTH_ALARM


STREAM_FAILURE_QUEUE = QueueSpec(
    "StreamFailureQueue",
    "stream-failures",
    "The aggregator gave up on stream records and stream_recovery has not re-aggregated "
    "them for 15 minutes; see its errors and docs/deploy.md.",
    consumed=True,
    dead_letter="StreamFailureDeadLetterQueue",
)
STREAM_FAILURE_DLQ = QueueSpec(
    "StreamFailureDeadLetterQueue",
    "stream-failures-dlq",
    "stream_recovery failed 5 times on a stream failure message; the range it names is "
    "still in the stream for up to 24 hours (docs/deploy.md).",
)


def rule_dead_letter_queue(logical_id: str, function: str) -> QueueSpec:
    return QueueSpec(
        f"{logical_id}RuleDeadLetterQueue",
        f"{function.replace('_', '-')}-rule-dlq",
        f"EventBridge could not deliver an aggregated event to {function}; the message "
        "holds the event (docs/deploy.md).",
    )


def async_failure_queue(logical_id: str, function: str) -> QueueSpec:
    return QueueSpec(
        f"{logical_id}AsyncFailureQueue",
        f"{function.replace('_', '-')}-async-failures",
        f"{function} failed on an aggregated event 3 times; the message holds the event "
        "and the error (docs/deploy.md).",
    )


# --- functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the app and exactly the AWS calls it makes."""

    name: str  # Chalice's name: the key under ``lambda_functions`` in config.json
    logical_id: str  # its resource in Chalice's SAM template
    table_actions: tuple[str, ...]
    index_actions: tuple[str, ...] = ()
    stream_actions: tuple[str, ...] = ()
    lists_streams: bool = False
    publishes: bool = False
    rule_target: bool = False  # target of an EventBridge rule (invoked asynchronously)
    sends_to: str | None = None  # logical id of a queue it sends failures to
    consumes: str | None = None  # logical id of a queue it consumes

    @property
    def role_id(self) -> str:
        """The role Chalice creates for it (``autogen_policy: false``)."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "Role"

    @property
    def log_group_id(self) -> str:
        return self.logical_id + "LogGroup"

    @property
    def errors_alarm_id(self) -> str:
        return self.logical_id + "ErrorsAlarm"

    @property
    def stack_suffix(self) -> str:
        """Its function name in a stack is ``<stack name>-<stack_suffix>``."""
        return self.name.replace("_", "-")

    @property
    def rule_event_id(self) -> str:
        """Its ``CloudWatchEvent`` in Chalice's template (``on_cw_event(name=...)``)."""
        return to_cfn_resource_name(f"{self.name}-event")

    @property
    def rule_id(self) -> str:
        """The ``AWS::Events::Rule`` the SAM transform makes of that event."""
        return self.logical_id + self.rule_event_id

    @property
    def rule_dead_letter_queue(self) -> QueueSpec:
        return rule_dead_letter_queue(self.logical_id, self.name)

    @property
    def async_failure_queue(self) -> QueueSpec:
        return async_failure_queue(self.logical_id, self.name)


# The aggregator's stream event and stream_recovery's queue event in Chalice's template.
STREAM_EVENT_ID = "AggregatorDynamodbEventSource"
RECOVERY_EVENT_ID = "StreamRecoverySqsEventSource"

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("api_handler", "APIHandler", (_PUT, _QUERY)),
    FunctionSpec(
        "aggregator",
        "Aggregator",
        (_QUERY, _PUT, _DELETE),
        stream_actions=STREAM_READ_ACTIONS,
        lists_streams=True,
        publishes=True,
        sends_to=STREAM_FAILURE_QUEUE.logical_id,
    ),
    FunctionSpec(
        "invoice_processing",
        "InvoiceProcessing",
        (_QUERY, _UPDATE),
        rule_target=True,
        sends_to="InvoiceProcessingAsyncFailureQueue",
    ),
    FunctionSpec(
        "problem_handler",
        "ProblemHandler",
        (_QUERY, _UPDATE),
        rule_target=True,
        sends_to="ProblemHandlerAsyncFailureQueue",
    ),
    FunctionSpec(
        "timeout_sweep",
        "TimeoutSweep",
        (_QUERY, _UPDATE, _PUT, _DELETE, _BATCH_GET),
        index_actions=(_QUERY,),
        publishes=True,
    ),
    FunctionSpec(
        "stream_recovery",
        "StreamRecovery",
        (_QUERY, _PUT, _DELETE),
        stream_actions=STREAM_READ_ACTIONS,
        publishes=True,
        consumes=STREAM_FAILURE_QUEUE.logical_id,
    ),
)
RULE_TARGETS = tuple(spec for spec in FUNCTIONS if spec.rule_target)
AGGREGATOR = next(spec for spec in FUNCTIONS if spec.name == "aggregator")

QUEUES: tuple[QueueSpec, ...] = (
    STREAM_FAILURE_QUEUE,
    STREAM_FAILURE_DLQ,
    *(
        queue
        for spec in RULE_TARGETS
        for queue in (spec.rule_dead_letter_queue, spec.async_failure_queue)
    ),
)
QUEUES_BY_ID = {queue.logical_id: queue for queue in QUEUES}


def errors_alarm_description(spec: FunctionSpec) -> str:
    return f"{spec.name} raised an error; its log group has the cause."


@dataclass(frozen=True)
class Targets:
    """What the functions may touch: ARNs as strings or CloudFormation expressions."""

    table: Expr
    index: Expr
    stream: Expr
    event_bus: Expr
    queues: Mapping[str, Expr]  # queue logical id -> its ARN
    log_groups: Mapping[str, Expr]  # function name -> "...:log-group:<name>:*"
    create_log_group: bool  # False when the stack creates the log groups


@dataclass(frozen=True)
class StreamArn:
    """The parts of a DynamoDB stream ARN."""

    partition: str
    region: str
    account: str
    table: str
    label: str

    @classmethod
    def parse(cls, arn: str) -> StreamArn:
        match = _STREAM_ARN.match(arn)
        if match is None:
            raise ConfigurationError(f"not a DynamoDB stream ARN: {arn!r}")
        return cls(**match.groupdict())

    def arn(self, service: str, resource: str) -> str:
        """An ARN of ``service`` in this stream's partition, region and account."""
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


# --- policies -------------------------------------------------------------------------


def _statement(sid: str, actions: Sequence[str], resource: Expr) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": [resource]}


def policy_document(spec: FunctionSpec, targets: Targets) -> dict[str, Any]:
    """The IAM policy of one function: its own logs and exactly the calls it makes."""
    log_actions = ("logs:CreateLogGroup", *LOG_ACTIONS) if targets.create_log_group else LOG_ACTIONS
    statements = [
        _statement("WriteOwnLogs", log_actions, targets.log_groups[spec.name]),
        _statement("EventsTable", spec.table_actions, targets.table),
    ]
    if spec.index_actions:
        statements.append(_statement("PendingIndex", spec.index_actions, targets.index))
    if spec.stream_actions:
        statements.append(_statement("ReadEventsStream", spec.stream_actions, targets.stream))
    if spec.lists_streams:
        statements.append(_statement("ListStreams", (LIST_STREAMS,), "*"))
    if spec.sends_to:
        statements.append(
            _statement("SendFailures", ("sqs:SendMessage",), targets.queues[spec.sends_to])
        )
    if spec.consumes:
        statements.append(
            _statement("ConsumeQueue", QUEUE_CONSUMER_ACTIONS, targets.queues[spec.consumes])
        )
    if spec.publishes:
        statements.append(
            _statement("PublishAggregatedEvents", ("events:PutEvents",), targets.event_bus)
        )
    return {"Version": "2012-10-17", "Statement": statements}


def wildcard_reasons(spec: FunctionSpec) -> dict[str, str]:
    """Each ``*`` left in the function's policy, and why."""
    reasons = {"logs": WILDCARD_REASONS["logs"]}
    if spec.lists_streams:
        reasons["streams"] = WILDCARD_REASONS["streams"]
    return reasons


# --- the stream trigger ---------------------------------------------------------------


def filter_criteria() -> dict[str, Any]:
    """``FilterCriteria`` of the event source mapping (the pattern as a JSON string)."""
    return {"Filters": [{"Pattern": json.dumps(stream_filter_pattern(), separators=(",", ":"))}]}


def _arn_of(logical_id: str) -> Expr:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def stream_trigger_properties() -> dict[str, Any]:
    """Properties merged into the aggregator's ``DynamoDB`` event."""
    return {
        "Stream": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
        "StartingPosition": STARTING_POSITION,
        **STREAM_FAILURE_HANDLING,
        "DestinationConfig": {
            "OnFailure": {"Destination": _arn_of(STREAM_FAILURE_QUEUE.logical_id)}
        },
        "FilterCriteria": filter_criteria(),
    }


# --- the merge template ---------------------------------------------------------------


def _event_bus_arn_expression(event_bus: str) -> Expr:
    if event_bus.startswith("arn:"):
        return event_bus
    return {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/"
        + event_bus
    }


def cloudformation_targets(event_bus: str) -> Targets:
    """The stack's own resources, referenced by ``Ref``/``Fn::GetAtt``/``Fn::Sub``."""
    return Targets(
        table=_arn_of(TABLE_ID),
        index={"Fn::Sub": f"${{{TABLE_ID}.Arn}}/index/{table.PENDING_INDEX}"},
        stream={"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
        event_bus=_event_bus_arn_expression(event_bus),
        queues={queue.logical_id: _arn_of(queue.logical_id) for queue in QUEUES},
        log_groups={spec.name: _arn_of(spec.log_group_id) for spec in FUNCTIONS},
        create_log_group=False,
    )


_DELETED_WITH_STACK = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}


def events_table() -> dict[str, Any]:
    """The table, kept when the stack is deleted or the table would be replaced."""
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": table.cloudformation_properties({"Fn::Sub": "${AWS::StackName}-events"}),
    }


def queue_attributes(queue: QueueSpec, dead_letter_arn: str | None = None) -> dict[str, str]:
    """``CreateQueue`` attributes of ``queue`` (the chalice deploy path)."""
    attributes = {
        "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
        "SqsManagedSseEnabled": "true",
    }
    if queue.consumed:
        attributes["VisibilityTimeout"] = str(CONSUMED_QUEUE_VISIBILITY_SECONDS)
    if dead_letter_arn is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        )
    return attributes


def queue_resource(queue: QueueSpec) -> dict[str, Any]:
    """The same queue as an ``AWS::SQS::Queue``."""
    properties: dict[str, Any] = {
        "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
        "SqsManagedSseEnabled": True,
    }
    if queue.consumed:
        properties["VisibilityTimeout"] = CONSUMED_QUEUE_VISIBILITY_SECONDS
    if queue.dead_letter is not None:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": _arn_of(queue.dead_letter),
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        }
    return {"Type": "AWS::SQS::Queue", **_DELETED_WITH_STACK, "Properties": properties}


def rule_dead_letter_statement(queue_arn: Expr, rule_arn: Expr) -> dict[str, Any]:
    """Lets EventBridge put the events of one rule into its target's DLQ (and no other)."""
    return {
        "Sid": "RuleDeadLetters",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }


def rule_dead_letter_policy(spec: FunctionSpec) -> dict[str, Any]:
    queue = spec.rule_dead_letter_queue.logical_id
    statement = rule_dead_letter_statement(_arn_of(queue), _arn_of(spec.rule_id))
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        },
    }


def _alarm_actions() -> Expr:
    return {"Fn::If": [HAS_ALARM_TOPIC, [{"Ref": ALARM_TOPIC_PARAMETER}], {"Ref": "AWS::NoValue"}]}


def alarm(
    description: str, settings: Mapping[str, Any], dimension: dict[str, Any]
) -> dict[str, Any]:
    actions = _alarm_actions()
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "Dimensions": [dimension],
            **settings,
            "AlarmActions": actions,
            "OKActions": actions,
        },
    }


def queue_alarm(queue: QueueSpec) -> dict[str, Any]:
    name = {"Fn::GetAtt": [queue.logical_id, "QueueName"]}
    return alarm(queue.description, queue.alarm, {"Name": "QueueName", "Value": name})


def function_alarm(
    description: str, settings: Mapping[str, Any], spec: FunctionSpec
) -> dict[str, Any]:
    return alarm(description, settings, {"Name": "FunctionName", "Value": {"Ref": spec.logical_id}})


def log_group(spec: FunctionSpec) -> dict[str, Any]:
    """Created before the function (its role references it), so Lambda never has to."""
    return {
        "Type": "AWS::Logs::LogGroup",
        **_DELETED_WITH_STACK,
        "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{spec.stack_suffix}"},
            "RetentionInDays": LOG_RETENTION_DAYS,
        },
    }


def role_override(spec: FunctionSpec, targets: Targets) -> dict[str, Any]:
    """Replaces the policy of the role Chalice made for ``spec`` (lists replace); X-Ray's
    calls are granted only while the stack's ``Tracing`` parameter is ``Active``."""
    document = policy_document(spec, targets)
    document["Statement"].append(ops_view.tracing_statement())
    reasons = {**wildcard_reasons(spec), "xray": ops_view.XRAY_WILDCARD_REASON}
    return {
        "Metadata": {"WildcardResources": reasons},
        "Properties": {
            "Policies": [{"PolicyName": spec.role_id + "Policy", "PolicyDocument": document}]
        },
    }


def _events_override(spec: FunctionSpec) -> dict[str, Any]:
    """What the merge adds to the function's Chalice-made event (trigger), if anything."""
    if spec is AGGREGATOR:
        return {STREAM_EVENT_ID: {"Properties": stream_trigger_properties()}}
    if spec.consumes:
        # Chalice names the queue with an ``Fn::Sub`` of its name; merging replaces that
        # string (dictionaries merge key by key), so the trigger reads the stack's queue.
        queue = {"Queue": {"Fn::Sub": f"${{{spec.consumes}.Arn}}"}, **RECOVERY_TRIGGER_SETTINGS}
        return {RECOVERY_EVENT_ID: {"Properties": queue}}
    if spec.rule_target:
        dead_letters = {"Arn": _arn_of(spec.rule_dead_letter_queue.logical_id)}
        properties = {"DeadLetterConfig": dead_letters, "RetryPolicy": RULE_RETRY_POLICY}
        return {spec.rule_event_id: {"Properties": properties}}
    return {}


def event_invoke_config(spec: FunctionSpec) -> dict[str, Any]:
    """SAM's ``EventInvokeConfig``: the rule target's on-failure destination."""
    destination = {"Type": "SQS", "Destination": _arn_of(spec.async_failure_queue.logical_id)}
    return {**ASYNC_INVOKE_SETTINGS, "DestinationConfig": {"OnFailure": destination}}


def function_override(spec: FunctionSpec) -> dict[str, Any]:
    """Name, table settings and triggers of one function."""
    properties: dict[str, Any] = {
        "FunctionName": {"Fn::Sub": f"${{AWS::StackName}}-{spec.stack_suffix}"},
        "Environment": {
            "Variables": {
                "TABLE_NAME": {"Ref": TABLE_ID},
                "EVENTS_STREAM_ARN": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
                "STREAM_FAILURE_QUEUE": {
                    "Fn::GetAtt": [STREAM_FAILURE_QUEUE.logical_id, "QueueName"]
                },
            }
        },
    }
    events = _events_override(spec)
    if events:
        properties["Events"] = events
    if spec.rule_target:
        properties["EventInvokeConfig"] = event_invoke_config(spec)
    properties["Tracing"] = {"Ref": ops_view.TRACING_PARAMETER}
    return {"Properties": properties}


def outputs() -> dict[str, Any]:
    found: dict[str, Any] = {
        "EventsTableName": {"Value": {"Ref": TABLE_ID}},
        "EventsStreamArn": {"Value": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]}},
    }
    for queue in QUEUES:
        found[queue.logical_id + "Url"] = {"Value": {"Ref": queue.logical_id}}
    return found


def _alarms() -> dict[str, Any]:
    alarms = {queue.alarm_id: queue_alarm(queue) for queue in QUEUES}
    for spec in FUNCTIONS:
        alarms[spec.errors_alarm_id] = function_alarm(
            errors_alarm_description(spec), FUNCTION_ERRORS_ALARM, spec
        )
    alarms[ITERATOR_AGE_ALARM_ID] = function_alarm(
        ITERATOR_AGE_DESCRIPTION, ITERATOR_AGE_ALARM, AGGREGATOR
    )
    return alarms


def merge_template(settings: Settings) -> dict[str, Any]:
    """The whole merge template, from the deployable stages' shared settings."""
    targets = cloudformation_targets(settings.event_bus_name)
    resources: dict[str, Any] = {TABLE_ID: events_table()}
    for queue in QUEUES:
        resources[queue.logical_id] = queue_resource(queue)
    for spec in RULE_TARGETS:
        resources[spec.rule_dead_letter_queue.logical_id + "Policy"] = rule_dead_letter_policy(spec)
    resources.update(_alarms())
    for spec in FUNCTIONS:
        resources[spec.log_group_id] = log_group(spec)
        resources[spec.role_id] = role_override(spec, targets)
        resources[spec.logical_id] = function_override(spec)
    resources[ops_view.DASHBOARD_ID] = ops_view.dashboard(
        METRIC_NAMES,
        [spec.stack_suffix for spec in FUNCTIONS],
        [queue.logical_id for queue in QUEUES],
    )
    resources[ops_view.ARCHIVE_ID] = ops_view.archive(settings)
    return {
        "Description": "Event aggregator: waits for every check of an order, then acts once.",
        "Parameters": {
            ALARM_TOPIC_PARAMETER: {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic told when any of the stack's alarms changes state.",
            },
            **ops_view.parameters(),
        },
        "Conditions": {
            HAS_ALARM_TOPIC: {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_TOPIC_PARAMETER}, ""]}]},
            **ops_view.conditions(),
        },
        "Resources": resources,
        "Outputs": outputs(),
    }


# --- per-stage policy files for `chalice deploy` -------------------------------------


def stage_environment(config: Mapping[str, Any], stage: str) -> dict[str, str]:
    """The environment variables Chalice gives the functions of ``stage``."""
    environment = dict(config.get("environment_variables", {}))
    environment.update(config["stages"][stage].get("environment_variables", {}))
    return environment


def stage_settings(config: Mapping[str, Any], stage: str) -> Settings:
    return load_settings(stage_environment(config, stage))


def deployable_stages(config: Mapping[str, Any]) -> list[str]:
    """Stages with an authenticated API. ``API_AUTH=none`` is for the local runtime only:
    it gets no policy files, so Chalice refuses to package or deploy it."""
    stages: Mapping[str, Any] = config.get("stages", {})
    return [name for name in stages if stage_settings(config, name).api_auth != "none"]


def policy_file_name(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def deployed_function_name(app_name: str, stage: str, function: str) -> str:
    """The function's name under ``chalice deploy``."""
    if function == "api_handler":
        return f"{app_name}-{stage}"
    return f"{app_name}-{stage}-{function}"


def queue_name(queue: QueueSpec, settings: Settings) -> str:
    """The name of ``queue`` on the chalice deploy path."""
    if queue is STREAM_FAILURE_QUEUE:  # the setting app.py's stream_recovery consumes
        return settings.stream_failure_queue
    return f"{settings.table_name}-{queue.suffix}"


def rule_name(app_name: str, stage: str, function: str) -> str:
    """The rule ``chalice deploy`` creates for ``on_cw_event(name=function)``."""
    return f"{app_name}-{stage}-{function}-event"


def stage_stream(config: Mapping[str, Any], stage: str) -> StreamArn:
    """The stage's stream ARN, once ``scripts.bootstrap`` has written it."""
    settings = stage_settings(config, stage)
    if not settings.stream_arn:
        raise ConfigurationError(
            f"stage {stage} has no EVENTS_STREAM_ARN yet: run python -m scripts.deploy "
            f"--stage {stage} (or python -m scripts.bootstrap --stage {stage}) first"
        )
    stream = StreamArn.parse(settings.stream_arn)
    if stream.table != settings.table_name:
        raise ConfigurationError(
            f"stage {stage}: EVENTS_STREAM_ARN is a stream of table {stream.table!r}, "
            f"not of TABLE_NAME {settings.table_name!r}"
        )
    return stream


def stage_targets(config: Mapping[str, Any], stage: str) -> Targets:
    """Concrete ARNs of a stage, from its table name, stream ARN and bus."""
    settings = stage_settings(config, stage)
    stream = stage_stream(config, stage)
    table_arn = stream.arn("dynamodb", f"table/{settings.table_name}")
    bus = settings.event_bus_name
    log_groups = {
        spec.name: stream.arn(
            "logs",
            f"log-group:/aws/lambda/{deployed_function_name(config['app_name'], stage, spec.name)}:*",
        )
        for spec in FUNCTIONS
    }
    return Targets(
        table=table_arn,
        index=f"{table_arn}/index/{table.PENDING_INDEX}",
        stream=settings.stream_arn,
        event_bus=bus if bus.startswith("arn:") else stream.arn("events", f"event-bus/{bus}"),
        queues={q.logical_id: stream.arn("sqs", queue_name(q, settings)) for q in QUEUES},
        log_groups=log_groups,
        create_log_group=True,
    )


def check_chalice_config(config: Mapping[str, Any], stage: str) -> None:
    """Chalice must read each function's policy from the file rendered for it."""
    if config.get("autogen_policy") is not False:
        raise ConfigurationError('.chalice/config.json must set "autogen_policy": false')
    functions = config["stages"][stage].get("lambda_functions", {})
    for spec in FUNCTIONS:
        expected = policy_file_name(stage, spec.name)
        if functions.get(spec.name, {}).get("iam_policy_file") != expected:
            raise ConfigurationError(
                f'stage {stage}: set lambda_functions.{spec.name}.iam_policy_file to "{expected}"'
            )


def shared_event_bus(config: Mapping[str, Any], stages: Sequence[str]) -> str:
    """The bus of every deployable stage (the merge template serves them all)."""
    buses = {stage_settings(config, stage).event_bus_name for stage in stages}
    if len(buses) != 1:
        raise ConfigurationError(f"deployable stages must share one EVENT_BUS_NAME, got {buses}")
    return buses.pop()


# --- files ----------------------------------------------------------------------------


def to_json(document: Mapping[str, Any]) -> str:
    """The stable text of a generated file."""
    return json.dumps(document, indent=2) + "\n"


def read_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def stage_policy_files(config: Mapping[str, Any], stage: str, chalice_dir: Path) -> dict[Path, str]:
    """The policy files of one bootstrapped stage, by path (``scripts.bootstrap``)."""
    check_chalice_config(config, stage)
    targets = stage_targets(config, stage)
    files = {}
    for spec in FUNCTIONS:
        document = policy_document(spec, targets)
        if stage_traced(config, stage):
            document["Statement"].append(ops_view.tracing_statement()["Fn::If"][1])
        files[chalice_dir / policy_file_name(stage, spec.name)] = to_json(document)
    return files


def stage_traced(config: Mapping[str, Any], stage: str) -> bool:
    """Chalice's own ``"xray": true`` (top level or in the stage) turns on active tracing
    under ``chalice deploy``; its functions then need X-Ray's write calls."""
    return bool(config["stages"][stage].get("xray", config.get("xray", False)))


def rendered_files(chalice_dir: Path = CHALICE_DIR) -> dict[Path, str]:
    """The committed generated file (the merge template), from ``<chalice_dir>/config.json``.

    Every deployable stage must be configured for its bootstrap-time policy files.
    """
    config = read_config(chalice_dir / "config.json")
    stages = deployable_stages(config)
    for stage in stages:
        check_chalice_config(config, stage)
    shared_event_bus(config, stages)
    settings = stage_settings(config, stages[0])
    return {chalice_dir / MERGE_TEMPLATE: to_json(merge_template(settings))}


def stale_files(files: Mapping[Path, str]) -> list[Path]:
    """The files whose content on disk differs from ``files`` (or that are missing)."""
    return [path for path, text in files.items() if not path.exists() or path.read_text() != text]


def write_files(files: Mapping[Path, str]) -> list[Path]:
    """Write the files that changed; return them."""
    changed = stale_files(files)
    for path in changed:
        path.write_text(files[path])
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    parser.add_argument("--chalice-dir", type=Path, default=CHALICE_DIR)
    args = parser.parse_args(argv)
    try:
        files = rendered_files(args.chalice_dir)
    except ConfigurationError as err:
        print(f"render_template: {err}", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(files)
        for path in stale:
            print(f"out of date: {path} (run python -m scripts.render_template)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_files(files):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
