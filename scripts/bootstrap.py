"""Prepare a stage for ``chalice deploy``: what Chalice itself does not create.

``chalice deploy`` creates the functions, their roles, the API, the rules and the stream
trigger, but not the events table, and its stream trigger has no failure handling. So:

1. ``python -m scripts.bootstrap --stage dev`` creates (if missing) the events table
   from :func:`chalicelib.table.create_table_request` with its stream, point-in-time
   recovery and encryption, the stream failure queue and its alarm; writes the stream
   ARN into the stage's ``EVENTS_STREAM_ARN`` in ``.chalice/config.json`` and renders
   the stage's policy files (``scripts.render_template``) with the real ARNs.
2. ``chalice deploy --stage dev``.
3. ``python -m scripts.bootstrap --stage dev --finish`` gives the aggregator's stream
   trigger the template's failure handling and filter (after every ``chalice deploy``).

Teardown: ``chalice delete --stage dev``, then ``python -m scripts.bootstrap --stage dev
--teardown`` deletes the alarm, the queue and the table (with its data).

Every step is idempotent. AWS access follows the standard environment (``AWS_REGION``,
``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` ...); this script never reads credentials.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from chalicelib import table
from chalicelib.config import ConfigurationError
from scripts import render_template as rt

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WaiterConfigTypeDef
    from mypy_boto3_sqs import SQSClient

TABLE_WAIT: WaiterConfigTypeDef = {"Delay": 5, "MaxAttempts": 60}


class BootstrapError(RuntimeError):
    """A step cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Clients:
    """The AWS clients the steps use (``lambda`` and ``cloudwatch`` have no stubs here)."""

    dynamodb: DynamoDBClient
    sqs: SQSClient
    cloudwatch: Any
    lambda_: Any

    @classmethod
    def from_environment(cls) -> Clients:
        return cls(
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            cloudwatch=boto3.client("cloudwatch"),
            lambda_=boto3.client("lambda"),
        )


@dataclass(frozen=True)
class Stage:
    """One deployable stage of ``.chalice/config.json``."""

    config_path: Path
    name: str

    @property
    def config(self) -> dict[str, Any]:
        return rt.read_config(self.config_path)

    @property
    def table_name(self) -> str:
        return rt.stage_settings(self.config, self.name).table_name

    @property
    def queue_name(self) -> str:
        return rt.failure_queue_name(self.table_name)

    @property
    def stream_arn(self) -> str:
        return rt.stage_settings(self.config, self.name).stream_arn

    def function_name(self, function: str) -> str:
        return rt.deployed_function_name(self.config["app_name"], self.name, function)


def load_stage(config_path: Path, name: str) -> Stage:
    """The stage, if the config has it and it may be deployed."""
    config = rt.read_config(config_path)
    if name not in config.get("stages", {}):
        raise BootstrapError(f"no stage {name!r} in {config_path}")
    if name not in rt.deployable_stages(config):
        raise BootstrapError(f"stage {name!r} has API_AUTH=none: it is for the local runtime only")
    return Stage(config_path, name)


# --- step 1: before chalice deploy ----------------------------------------------------


def _describe_table(dynamodb: DynamoDBClient, name: str) -> dict[str, Any] | None:
    try:
        description: dict[str, Any] = dict(dynamodb.describe_table(TableName=name)["Table"])
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    return description


def _check_stream(description: Mapping[str, Any]) -> str:
    """The stream ARN of an existing table, if its stream is the one the app needs."""
    stream = description.get("StreamSpecification") or {}
    arn = description.get("LatestStreamArn")
    if not stream.get("StreamEnabled") or stream.get("StreamViewType") != table.STREAM_VIEW_TYPE:
        raise BootstrapError(
            f"table {description['TableName']} exists without a {table.STREAM_VIEW_TYPE} "
            "stream; enable it (or delete the table) and run again"
        )
    if not isinstance(arn, str):
        raise BootstrapError(f"table {description['TableName']} reports no stream ARN")
    return arn


def ensure_table(dynamodb: DynamoDBClient, name: str) -> str:
    """Create the table unless it exists, wait until it is ACTIVE, return its stream ARN."""
    if _describe_table(dynamodb, name) is None:
        request = {**table.create_table_request(name), "SSESpecification": {"Enabled": True}}
        dynamodb.create_table(**request)
        print(f"creating table {name} ...")
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=TABLE_WAIT)
    dynamodb.update_continuous_backups(
        TableName=name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    description = _describe_table(dynamodb, name)
    if description is None:
        raise BootstrapError(f"table {name} vanished while waiting for it")
    return _check_stream(description)


def ensure_failure_queue(sqs: SQSClient, name: str) -> str:
    """Create the stream failure queue unless it exists; return its ARN."""
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "MessageRetentionPeriod": str(rt.FAILURE_QUEUE_RETENTION_SECONDS),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def ensure_alarm(cloudwatch: Any, queue_name: str, topic_arn: str | None) -> None:
    """The alarm on the failure queue's depth, as in the template (put is an upsert)."""
    actions = [topic_arn] if topic_arn else []
    cloudwatch.put_metric_alarm(
        AlarmName=queue_name,
        AlarmDescription=rt.FAILURE_ALARM_DESCRIPTION,
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        AlarmActions=actions,
        OKActions=actions,
        **rt.FAILURE_ALARM_SETTINGS,
    )


def write_stream_arn(stage: Stage, stream_arn: str) -> bool:
    """Set the stage's ``EVENTS_STREAM_ARN`` (nothing else changes); True if it changed."""
    config = stage.config
    variables = config["stages"][stage.name].setdefault("environment_variables", {})
    if variables.get("EVENTS_STREAM_ARN") == stream_arn:
        return False
    variables["EVENTS_STREAM_ARN"] = stream_arn
    stage.config_path.write_text(rt.to_json(config))
    return True


def prepare(stage: Stage, clients: Clients, alarm_topic_arn: str | None = None) -> str:
    """Step 1. Returns the stream ARN."""
    stream_arn = ensure_table(clients.dynamodb, stage.table_name)
    print(f"table {stage.table_name}: ACTIVE, stream {stream_arn}")
    queue_arn = ensure_failure_queue(clients.sqs, stage.queue_name)
    ensure_alarm(clients.cloudwatch, stage.queue_name, alarm_topic_arn)
    print(f"failure queue {queue_arn} and its alarm {stage.queue_name}: ready")
    if write_stream_arn(stage, stream_arn):
        print(f"{stage.config_path}: stages.{stage.name} EVENTS_STREAM_ARN updated")
    config = stage.config
    for path in rt.write_files(rt.stage_policy_files(config, stage.name, stage.config_path.parent)):
        print(f"wrote {path}")
    print(f"next: chalice deploy --stage {stage.name}")
    print(f"then: python -m scripts.bootstrap --stage {stage.name} --finish")
    return stream_arn


# --- step 3: after chalice deploy -----------------------------------------------------


def find_stream_mapping(lambda_: Any, stream_arn: str, function_name: str) -> dict[str, Any]:
    """The event source mapping from the events stream to the aggregator."""
    found = []
    for page in lambda_.get_paginator("list_event_source_mappings").paginate(
        EventSourceArn=stream_arn
    ):
        for mapping in page["EventSourceMappings"]:
            if mapping.get("FunctionArn", "").endswith(f":function:{function_name}"):
                found.append(mapping)
    if len(found) != 1:
        raise BootstrapError(
            f"expected one stream trigger of {function_name}, found {len(found)}: "
            "run chalice deploy (after step 1) first"
        )
    return dict(found[0])


def stream_mapping_update(queue_arn: str) -> dict[str, Any]:
    """The template's failure handling and filter, as ``UpdateEventSourceMapping`` args."""
    return {
        **rt.STREAM_FAILURE_HANDLING,
        "DestinationConfig": {"OnFailure": {"Destination": queue_arn}},
        "FilterCriteria": rt.filter_criteria(),
    }


def finish(stage: Stage, clients: Clients) -> dict[str, Any]:
    """Step 3. Returns the updated mapping."""
    url = clients.sqs.get_queue_url(QueueName=stage.queue_name)["QueueUrl"]
    queue_arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    function = stage.function_name("aggregator")
    mapping = find_stream_mapping(clients.lambda_, stage.stream_arn, function)
    updated: dict[str, Any] = clients.lambda_.update_event_source_mapping(
        UUID=mapping["UUID"], **stream_mapping_update(queue_arn)
    )
    print(f"stream trigger {mapping['UUID']} of {function}: failure handling and filter set")
    return updated


# --- teardown -------------------------------------------------------------------------


def _deployed_functions(stage: Stage, lambda_: Any) -> list[str]:
    deployed = []
    for spec in rt.FUNCTIONS:
        name = stage.function_name(spec.name)
        try:
            lambda_.get_function(FunctionName=name)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            continue
        deployed.append(name)
    return deployed


def teardown(stage: Stage, clients: Clients) -> None:
    """Delete the alarm, the failure queue and the table, once the app is gone."""
    deployed = _deployed_functions(stage, clients.lambda_)
    if deployed:
        raise BootstrapError(
            f"functions still deployed: {', '.join(deployed)}; run chalice delete --stage "
            f"{stage.name} first"
        )
    clients.cloudwatch.delete_alarms(AlarmNames=[stage.queue_name])
    try:
        url = clients.sqs.get_queue_url(QueueName=stage.queue_name)["QueueUrl"]
    except clients.sqs.exceptions.QueueDoesNotExist:
        url = None
    if url:
        clients.sqs.delete_queue(QueueUrl=url)
    if _describe_table(clients.dynamodb, stage.table_name) is not None:
        clients.dynamodb.delete_table(TableName=stage.table_name)
        clients.dynamodb.get_waiter("table_not_exists").wait(
            TableName=stage.table_name, WaiterConfig=TABLE_WAIT
        )
    print(f"deleted alarm and queue {stage.queue_name} and table {stage.table_name}")


# --- command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Create what chalice deploy needs but does not create (see module doc)."
    )
    parser.add_argument("--stage", required=True)
    parser.add_argument("--config", type=Path, default=rt.CHALICE_DIR / "config.json")
    parser.add_argument("--alarm-topic-arn", help="SNS topic for the failure alarm (step 1)")
    step = parser.add_mutually_exclusive_group()
    step.add_argument("--finish", action="store_true", help="step 3, after chalice deploy")
    step.add_argument("--teardown", action="store_true", help="after chalice delete")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    args = parse_args(argv)
    try:
        stage = load_stage(args.config, args.stage)
        aws = clients or Clients.from_environment()
        if args.teardown:
            teardown(stage, aws)
        elif args.finish:
            finish(stage, aws)
        else:
            prepare(stage, aws, args.alarm_topic_arn)
    except (BootstrapError, ConfigurationError) as err:
        print(f"bootstrap: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
