"""Render the deployment's generated files from Python, so each fact has one source.

``.chalice/merge-template.json``
    What ``chalice package --merge-template`` adds to Chalice's SAM template: the events
    table (:func:`chalicelib.table.cloudformation_properties`), the stream trigger's
    failure handling and filter, the failure queue and its alarm, a log group per
    function and one least-privilege policy per function role, all wired with
    ``Ref``/``Fn::GetAtt``: no hand-copied name or ARN. It is the same for every stage;
    names derive from the stack name (one stack per stage).

``.chalice/policy-<stage>-<function>.json``
    The same policies with concrete ARNs for ``chalice deploy``: the ``iam_policy_file``
    of each function in ``.chalice/config.json``. The ARNs come from that stage's
    settings; ``scripts.bootstrap`` writes the real stream ARN and re-renders them.

The rule patterns are not repeated here: Chalice emits them from ``app.py``, which builds
them with :mod:`chalicelib.rules` (``tests/deployment`` asserts that they match).

Remember when editing: a list in the merge template *replaces* Chalice's list (e.g. a
role's ``Policies``); dictionaries are merged key by key.

Usage::

    python -m scripts.render_template            # (re)write the files
    python -m scripts.render_template --check    # exit 1 if a committed file differs
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

from chalicelib import table
from chalicelib.config import ConfigurationError, Settings, load_settings
from chalicelib.rules import stream_filter_pattern

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHALICE_DIR = PROJECT_DIR / ".chalice"
MERGE_TEMPLATE = "merge-template.json"

# A value in a policy or template: a plain string or a CloudFormation expression.
Expr = Any

# Logical ids of the resources the merge template adds.
TABLE_ID = "EventsTable"
FAILURE_QUEUE_ID = "StreamFailureQueue"
FAILURE_ALARM_ID = "StreamFailureAlarm"
ALARM_TOPIC_PARAMETER = "AlarmTopicArn"
HAS_ALARM_TOPIC = "HasAlarmTopic"
# The aggregator's stream event in Chalice's template (from ``name="aggregator"``).
STREAM_EVENT_ID = "AggregatorDynamodbEventSource"

LOG_RETENTION_DAYS = 30
# Chalice takes the runtime from the interpreter that packages (3.11 here), but Lambda has
# refused to create python3.11 functions since 2026-07-31 (updates since 2026-08-31). The
# zip is pure Python (tests/deployment asserts it), so it runs unchanged on the oldest
# runtime still supported. Drop this override once the project itself moves to 3.12+.
LAMBDA_RUNTIME = "python3.12"
FAILURE_QUEUE_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum

# Read a new stream from its start: nothing written before the mapping is enabled is lost.
STARTING_POSITION = "TRIM_HORIZON"
# Failure handling of the aggregator's event source mapping, applied by the template and
# by ``scripts.bootstrap --finish`` (the ``chalice deploy`` path). A record that still
# fails after 10 retries or 1 hour goes to the failure queue; the stream keeps it for
# 23 more hours, time to inspect and replay it.
STREAM_FAILURE_HANDLING: dict[str, Any] = {
    # Up to 10 batches per shard at once. Lambda keeps records of one partition key (one
    # order) in order, so this changes no result and adds no request: it lifts the limit
    # that binds first (one batch per shard at a time, see docs/bench.md) tenfold.
    "ParallelizationFactor": 10,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": 10,
    "MaximumRecordAgeInSeconds": 3600,
}
# The alarm on the failure queue (template and bootstrap alike).
FAILURE_ALARM_SETTINGS: dict[str, Any] = {
    "Namespace": "AWS/SQS",
    "MetricName": "ApproximateNumberOfMessagesVisible",
    "Statistic": "Maximum",
    "Period": 60,
    "EvaluationPeriods": 1,
    "Threshold": 0,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
}
FAILURE_ALARM_DESCRIPTION = (
    "The aggregator gave up on stream records; the failure queue names the shard and "
    "sequence numbers. Inspect and replay them (docs/deploy.md)."
)

_QUERY = "dynamodb:Query"
_PUT = "dynamodb:PutItem"
_UPDATE = "dynamodb:UpdateItem"
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")

# Why a resource keeps a "*": AWS allows nothing narrower there.
WILDCARD_REASONS = {
    "logs": (
        "log-group:<this function's log group>:* - Lambda names its log streams at run "
        "time; the grant covers the streams of this function's own log group only."
    ),
    "streams": (
        "<events table ARN>/stream/* - dynamodb:ListStreams, called by the event source "
        "mapping, is granted on the streams of the events table only."
    ),
}

_STREAM_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):dynamodb:(?P<region>[^:]+):(?P<account>\d{12}):"
    r"table/(?P<table>[^/]+)/stream/(?P<label>.+)$"
)


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the app and exactly the AWS calls it makes."""

    name: str  # Chalice's name: the key under ``lambda_functions`` in config.json
    logical_id: str  # its resource in Chalice's SAM template
    table_actions: tuple[str, ...]
    index_actions: tuple[str, ...] = ()
    reads_stream: bool = False
    publishes: bool = False

    @property
    def role_id(self) -> str:
        """The role Chalice creates for it (``autogen_policy: false``)."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "Role"

    @property
    def log_group_id(self) -> str:
        return self.logical_id + "LogGroup"

    @property
    def stack_suffix(self) -> str:
        """Its function name in a stack is ``<stack name>-<stack_suffix>``."""
        return self.name.replace("_", "-")


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("api_handler", "APIHandler", (_PUT, _UPDATE, _QUERY)),
    FunctionSpec("aggregator", "Aggregator", (_QUERY, _UPDATE), reads_stream=True, publishes=True),
    FunctionSpec("invoice_processing", "InvoiceProcessing", (_QUERY, _UPDATE)),
    FunctionSpec("problem_handler", "ProblemHandler", (_QUERY, _UPDATE)),
    FunctionSpec(
        "timeout_sweep", "TimeoutSweep", (_QUERY,), index_actions=(_QUERY,), publishes=True
    ),
)


@dataclass(frozen=True)
class Targets:
    """What the functions may touch: ARNs as strings or CloudFormation expressions."""

    table: Expr
    index: Expr
    stream: Expr
    table_streams: Expr
    event_bus: Expr
    failure_queue: Expr
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
    if spec.reads_stream:
        statements += [
            _statement("ReadEventsStream", STREAM_READ_ACTIONS, targets.stream),
            _statement("ListEventsStreams", ("dynamodb:ListStreams",), targets.table_streams),
            _statement("StreamFailureDestination", ("sqs:SendMessage",), targets.failure_queue),
        ]
    if spec.publishes:
        statements.append(
            _statement("PublishAggregatedEvents", ("events:PutEvents",), targets.event_bus)
        )
    return {"Version": "2012-10-17", "Statement": statements}


def wildcard_reasons(spec: FunctionSpec) -> dict[str, str]:
    """Each ``*`` left in the function's policy, and why."""
    reasons = {"logs": WILDCARD_REASONS["logs"]}
    if spec.reads_stream:
        reasons["streams"] = WILDCARD_REASONS["streams"]
    return reasons


# --- the stream trigger ---------------------------------------------------------------


def filter_criteria() -> dict[str, Any]:
    """``FilterCriteria`` of the event source mapping (the pattern as a JSON string)."""
    return {"Filters": [{"Pattern": json.dumps(stream_filter_pattern(), separators=(",", ":"))}]}


def stream_trigger_properties() -> dict[str, Any]:
    """Properties merged into the aggregator's ``DynamoDB`` event."""
    return {
        "Stream": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
        "StartingPosition": STARTING_POSITION,
        **STREAM_FAILURE_HANDLING,
        "DestinationConfig": {
            "OnFailure": {"Destination": {"Fn::GetAtt": [FAILURE_QUEUE_ID, "Arn"]}}
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
        table={"Fn::GetAtt": [TABLE_ID, "Arn"]},
        index={"Fn::Sub": f"${{{TABLE_ID}.Arn}}/index/{table.PENDING_INDEX}"},
        stream={"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
        table_streams={"Fn::Sub": f"${{{TABLE_ID}.Arn}}/stream/*"},
        event_bus=_event_bus_arn_expression(event_bus),
        failure_queue={"Fn::GetAtt": [FAILURE_QUEUE_ID, "Arn"]},
        log_groups={spec.name: {"Fn::GetAtt": [spec.log_group_id, "Arn"]} for spec in FUNCTIONS},
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


def failure_queue() -> dict[str, Any]:
    """Describes stream batches the aggregator gave up on (not the records themselves)."""
    return {
        "Type": "AWS::SQS::Queue",
        **_DELETED_WITH_STACK,
        "Properties": {
            "MessageRetentionPeriod": FAILURE_QUEUE_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
        },
    }


def failure_alarm() -> dict[str, Any]:
    actions = {
        "Fn::If": [HAS_ALARM_TOPIC, [{"Ref": ALARM_TOPIC_PARAMETER}], {"Ref": "AWS::NoValue"}]
    }
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": FAILURE_ALARM_DESCRIPTION,
            "Dimensions": [
                {"Name": "QueueName", "Value": {"Fn::GetAtt": [FAILURE_QUEUE_ID, "QueueName"]}}
            ],
            **FAILURE_ALARM_SETTINGS,
            "AlarmActions": actions,
            "OKActions": actions,
        },
    }


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
    """Replaces the policy of the role Chalice made for ``spec`` (lists replace)."""
    return {
        "Metadata": {"WildcardResources": wildcard_reasons(spec)},
        "Properties": {
            "Policies": [
                {
                    "PolicyName": spec.role_id + "Policy",
                    "PolicyDocument": policy_document(spec, targets),
                }
            ]
        },
    }


def function_override(spec: FunctionSpec) -> dict[str, Any]:
    """Name, table settings and (aggregator) stream trigger of one function."""
    properties: dict[str, Any] = {
        "Runtime": LAMBDA_RUNTIME,
        "FunctionName": {"Fn::Sub": f"${{AWS::StackName}}-{spec.stack_suffix}"},
        "Environment": {
            "Variables": {
                "TABLE_NAME": {"Ref": TABLE_ID},
                "EVENTS_STREAM_ARN": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]},
            }
        },
    }
    if spec.reads_stream:
        properties["Events"] = {STREAM_EVENT_ID: {"Properties": stream_trigger_properties()}}
    return {"Properties": properties}


def outputs() -> dict[str, Any]:
    return {
        "EventsTableName": {"Value": {"Ref": TABLE_ID}},
        "EventsStreamArn": {"Value": {"Fn::GetAtt": [TABLE_ID, "StreamArn"]}},
        "StreamFailureQueueUrl": {"Value": {"Ref": FAILURE_QUEUE_ID}},
        "StreamFailureAlarmName": {"Value": {"Ref": FAILURE_ALARM_ID}},
    }


def merge_template(event_bus: str) -> dict[str, Any]:
    """The whole merge template; ``event_bus`` is the bus the functions publish to."""
    targets = cloudformation_targets(event_bus)
    resources: dict[str, Any] = {
        TABLE_ID: events_table(),
        FAILURE_QUEUE_ID: failure_queue(),
        FAILURE_ALARM_ID: failure_alarm(),
    }
    for spec in FUNCTIONS:
        resources[spec.log_group_id] = log_group(spec)
        resources[spec.role_id] = role_override(spec, targets)
        resources[spec.logical_id] = function_override(spec)
    return {
        "Description": "Event aggregator: waits for every check of an order, then acts once.",
        "Parameters": {
            ALARM_TOPIC_PARAMETER: {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic told when the stream failure alarm changes state.",
            }
        },
        "Conditions": {
            HAS_ALARM_TOPIC: {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_TOPIC_PARAMETER}, ""]}]}
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


def failure_queue_name(table_name: str) -> str:
    """The failure queue ``scripts.bootstrap`` creates for the ``chalice deploy`` path."""
    return f"{table_name}-stream-failures"


def stage_targets(config: Mapping[str, Any], stage: str) -> Targets:
    """Concrete ARNs of a stage, from its table name, stream ARN and bus."""
    settings = stage_settings(config, stage)
    stream = StreamArn.parse(settings.stream_arn)
    if stream.table != settings.table_name:
        raise ConfigurationError(
            f"stage {stage}: EVENTS_STREAM_ARN is a stream of table {stream.table!r}, "
            f"not of TABLE_NAME {settings.table_name!r}"
        )
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
        table_streams=f"{table_arn}/stream/*",
        event_bus=bus if bus.startswith("arn:") else stream.arn("events", f"event-bus/{bus}"),
        failure_queue=stream.arn("sqs", failure_queue_name(settings.table_name)),
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
    """The policy files of one stage, by path."""
    check_chalice_config(config, stage)
    targets = stage_targets(config, stage)
    return {
        chalice_dir / policy_file_name(stage, spec.name): to_json(policy_document(spec, targets))
        for spec in FUNCTIONS
    }


def rendered_files(chalice_dir: Path = CHALICE_DIR) -> dict[Path, str]:
    """Every generated file and its content, from ``<chalice_dir>/config.json``."""
    config = read_config(chalice_dir / "config.json")
    stages = deployable_stages(config)
    files = {
        chalice_dir / MERGE_TEMPLATE: to_json(merge_template(shared_event_bus(config, stages)))
    }
    for stage in stages:
        files.update(stage_policy_files(config, stage, chalice_dir))
    return files


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
