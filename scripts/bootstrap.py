"""Prepare and finish a stage for ``chalice deploy``: what Chalice itself does not do.

``chalice deploy`` creates the functions, their roles, the API, the rules and the
triggers, but not the events table or any queue, and it gives the triggers, rule targets
and asynchronous invocations no failure handling. Run the whole sequence with one
command, ``python -m scripts.deploy --stage dev`` (bootstrap, ``chalice deploy``,
finish), or the steps one by one:

1. ``python -m scripts.bootstrap --stage dev`` creates (if missing) the events table from
   :func:`chalicelib.table.create_table_request` with its stream, point-in-time recovery
   (retried while a new table still answers ``ContinuousBackupsUnavailableException``)
   and encryption; the queues of :data:`scripts.render_template.QUEUES` (stream
   failures and their DLQ, each rule target's DLQ with a queue policy for its rule, each
   rule target's asynchronous on-failure queue); and the alarms (each queue, each
   function's ``Errors``, the aggregator's ``IteratorAge``). It writes the stream ARN into
   the stage's ``EVENTS_STREAM_ARN`` in ``.chalice/config.json`` and the stage's policy
   files (git-ignored) with the real ARNs.
2. ``chalice deploy --stage dev``.
3. ``python -m scripts.bootstrap --stage dev --finish`` gives the aggregator's stream
   trigger the template's failure handling and filter, ``stream_recovery``'s queue
   trigger partial batch responses, each rule target a DLQ and retry policy, and each
   rule target function its on-failure destination. Updates of a trigger that is still
   settling ("in use") are retried the way Chalice's own deployer does. Run it after
   every ``chalice deploy`` (which resets the rule targets); ``scripts.deploy`` does.

Until step 3 the stream trigger ignores ``batchItemFailures`` (a partial failure counts
as success), which is why ``scripts.deploy`` runs the three steps as one.

Teardown: ``chalice delete --stage dev``, then ``python -m scripts.bootstrap --stage dev
--teardown`` deletes the alarms, the queues and the table (with its data).

Every step is idempotent. AWS access follows the standard environment (``AWS_REGION``,
``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` ...); this script never reads credentials.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from chalicelib import table
from chalicelib.config import ConfigurationError, Settings
from chalicelib.observability import METRIC_NAMES
from scripts import dashboard as ops_view
from scripts import render_template as rt

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WaiterConfigTypeDef
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

TABLE_WAIT: WaiterConfigTypeDef = {"Delay": 5, "MaxAttempts": 60}
# The archive's retention, as the stack's ArchiveRetentionDays parameter defaults it.
ARCHIVE_DAYS = int(ops_view.parameters()[ops_view.ARCHIVE_PARAMETER]["Default"])
# Chalice's deployer retries a call with a fixed delay between attempts and a bound on
# them (chalice/awsclient.py: DELAY_TIME = 5 s; 10 attempts for event source mapping
# updates while "event source mapping ... is in use"). The same here.
DELAY_SECONDS = 5.0
MAPPING_ATTEMPTS = 10
# A table that just became ACTIVE may answer ContinuousBackupsUnavailableException
# ("Backups are being enabled for the table") for a while; two minutes in all.
BACKUP_ATTEMPTS = 24
_IN_USE = re.compile(r"\bin use\b", re.IGNORECASE)

# Waits between retried calls; tests replace it to record the waits without waiting.
sleep: Callable[[float], None] = time.sleep


class BootstrapError(RuntimeError):
    """A step cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Clients:
    """The AWS clients the steps use (``lambda`` and ``cloudwatch`` have no stubs here)."""

    dynamodb: DynamoDBClient
    sqs: SQSClient
    cloudwatch: Any
    lambda_: Any
    events: EventBridgeClient

    @classmethod
    def from_environment(cls) -> Clients:
        return cls(
            dynamodb=boto3.client("dynamodb"),
            sqs=boto3.client("sqs"),
            cloudwatch=boto3.client("cloudwatch"),
            lambda_=boto3.client("lambda"),
            events=boto3.client("events"),
        )


# --- bounded retries ------------------------------------------------------------------


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_settling(error: ClientError) -> bool:
    """Lambda is still changing the mapping (as Chalice's ``_is_settling_error``)."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "ResourceInUseException" or bool(_IN_USE.search(message))


def backups_unavailable(error: ClientError) -> bool:
    return error_code(error) == "ContinuousBackupsUnavailableException"


def call_with_retries(
    call: Callable[[], Any],
    should_retry: Callable[[ClientError], bool],
    attempts: int,
    delay: float = DELAY_SECONDS,
) -> Any:
    """``call()``, repeated after ``delay`` seconds while it fails with an error that
    ``should_retry`` accepts, at most ``attempts`` times in all; then the error is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as err:
            if attempt == attempts or not should_retry(err):
                raise
            print(f"  {error_code(err)}: retrying in {delay:g} s ({attempt}/{attempts})")
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# --- the stage ------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One deployable stage of ``.chalice/config.json``."""

    config_path: Path
    name: str

    @property
    def config(self) -> dict[str, Any]:
        return rt.read_config(self.config_path)

    @property
    def settings(self) -> Settings:
        return rt.stage_settings(self.config, self.name)

    @property
    def table_name(self) -> str:
        return self.settings.table_name

    def queue_name(self, queue: rt.QueueSpec) -> str:
        return rt.queue_name(queue, self.settings)

    @property
    def stream_arn(self) -> str:
        return self.settings.stream_arn

    def function_name(self, function: str) -> str:
        return rt.deployed_function_name(self.config["app_name"], self.name, function)

    def rule_name(self, function: str) -> str:
        return rt.rule_name(self.config["app_name"], self.name, function)

    def alarm_names(self) -> list[str]:
        names = [self.queue_name(queue) for queue in rt.QUEUES]
        names += [errors_alarm_name(self.function_name(spec.name)) for spec in rt.FUNCTIONS]
        return [*names, iterator_age_alarm_name(self.function_name(rt.AGGREGATOR.name))]


def errors_alarm_name(function_name: str) -> str:
    return f"{function_name}-errors"


def iterator_age_alarm_name(function_name: str) -> str:
    return f"{function_name}-iterator-age"


def load_stage(config_path: Path, name: str) -> Stage:
    """The stage, if the config has it and it may be deployed."""
    config = rt.read_config(config_path)
    if name not in config.get("stages", {}):
        raise BootstrapError(f"no stage {name!r} in {config_path}")
    if name not in rt.deployable_stages(config):
        raise BootstrapError(f"stage {name!r} has API_AUTH=none: it is for the local runtime only")
    rt.check_chalice_config(config, name)
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


def enable_point_in_time_recovery(dynamodb: DynamoDBClient, name: str) -> None:
    """PITR on, retried while the new table's backups are not available yet."""
    call_with_retries(
        lambda: dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        ),
        backups_unavailable,
        BACKUP_ATTEMPTS,
    )


def ensure_table(dynamodb: DynamoDBClient, name: str) -> str:
    """Create the table unless it exists, wait until it is ACTIVE, return its stream ARN."""
    if _describe_table(dynamodb, name) is None:
        request = {**table.create_table_request(name), "SSESpecification": {"Enabled": True}}
        dynamodb.create_table(**request)
        print(f"creating table {name} ...")
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=TABLE_WAIT)
    enable_point_in_time_recovery(dynamodb, name)
    description = _describe_table(dynamodb, name)
    if description is None:
        raise BootstrapError(f"table {name} vanished while waiting for it")
    return _check_stream(description)


def queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def ensure_queue(sqs: SQSClient, name: str, attributes: Mapping[str, str]) -> str:
    """Create the queue with ``attributes``, or set them on the existing one; its ARN."""
    values: Any = dict(attributes)  # the stubs want literal attribute names
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name, Attributes=values)["QueueUrl"]
    else:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=values)
    return queue_arn(sqs, url)


def rule_arn(stream: rt.StreamArn, rule: str) -> str:
    return stream.arn("events", f"rule/{rule}")


def _rule_queue_policy(queue: str, rule: str) -> str:
    statement = rt.rule_dead_letter_statement(queue, rule)
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def ensure_queues(stage: Stage, sqs: SQSClient, stream: rt.StreamArn) -> dict[str, str]:
    """Every queue of :data:`rt.QUEUES` (DLQs first); queue logical id -> ARN."""
    arns: dict[str, str] = {}
    dead_letters_first = sorted(rt.QUEUES, key=lambda queue: queue.dead_letter is not None)
    rule_queues = {spec.rule_dead_letter_queue.logical_id: spec for spec in rt.RULE_TARGETS}
    for queue in dead_letters_first:
        name = stage.queue_name(queue)
        dead_letter = arns[queue.dead_letter] if queue.dead_letter else None
        attributes = rt.queue_attributes(queue, dead_letter)
        spec = rule_queues.get(queue.logical_id)
        if spec is not None:
            own_arn = stream.arn("sqs", name)
            rule = rule_arn(stream, stage.rule_name(spec.name))
            attributes["Policy"] = _rule_queue_policy(own_arn, rule)
        arns[queue.logical_id] = ensure_queue(sqs, name, attributes)
    return arns


def put_alarm(
    cloudwatch: Any,
    name: str,
    description: str,
    settings: Mapping[str, Any],
    dimension: dict[str, str],
    topic_arn: str | None,
) -> None:
    """One alarm as in the template (``PutMetricAlarm`` is an upsert)."""
    actions = [topic_arn] if topic_arn else []
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=description,
        Dimensions=[dimension],
        AlarmActions=actions,
        OKActions=actions,
        **settings,
    )


def ensure_alarms(stage: Stage, cloudwatch: Any, topic_arn: str | None) -> None:
    """The template's alarms: each queue, each function's errors, the iterator age."""
    for queue in rt.QUEUES:
        name = stage.queue_name(queue)
        dimension = {"Name": "QueueName", "Value": name}
        put_alarm(cloudwatch, name, queue.description, queue.alarm, dimension, topic_arn)
    for spec in rt.FUNCTIONS:
        function = stage.function_name(spec.name)
        put_alarm(
            cloudwatch,
            errors_alarm_name(function),
            rt.errors_alarm_description(spec),
            rt.FUNCTION_ERRORS_ALARM,
            {"Name": "FunctionName", "Value": function},
            topic_arn,
        )
    aggregator = stage.function_name(rt.AGGREGATOR.name)
    put_alarm(
        cloudwatch,
        iterator_age_alarm_name(aggregator),
        rt.ITERATOR_AGE_DESCRIPTION,
        rt.ITERATOR_AGE_ALARM,
        {"Name": "FunctionName", "Value": aggregator},
        topic_arn,
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
    ensure_queues(stage, clients.sqs, rt.StreamArn.parse(stream_arn))
    ensure_alarms(stage, clients.cloudwatch, alarm_topic_arn)
    print(f"{len(rt.QUEUES)} queues and {len(stage.alarm_names())} alarms: ready")
    if write_stream_arn(stage, stream_arn):
        print(f"{stage.config_path}: stages.{stage.name} EVENTS_STREAM_ARN updated")
    config = stage.config
    for path in rt.write_files(rt.stage_policy_files(config, stage.name, stage.config_path.parent)):
        print(f"wrote {path}")
    return stream_arn


# --- step 3: after chalice deploy -----------------------------------------------------


def find_mapping(lambda_: Any, source_arn: str, function_name: str) -> dict[str, Any]:
    """The one event source mapping from ``source_arn`` to the function."""
    found = []
    for page in lambda_.get_paginator("list_event_source_mappings").paginate(
        EventSourceArn=source_arn
    ):
        for mapping in page["EventSourceMappings"]:
            if mapping.get("FunctionArn", "").endswith(f":function:{function_name}"):
                found.append(mapping)
    if len(found) != 1:
        raise BootstrapError(
            f"expected one trigger of {function_name} on {source_arn}, found {len(found)}: "
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


def update_mapping(lambda_: Any, uuid: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``UpdateEventSourceMapping``, retried while the mapping is settling."""
    updated: dict[str, Any] = call_with_retries(
        lambda: lambda_.update_event_source_mapping(UUID=uuid, **settings),
        is_settling,
        MAPPING_ATTEMPTS,
    )
    return updated


def stage_queue_arns(stage: Stage, sqs: SQSClient) -> dict[str, str]:
    """The ARNs of the stage's queues (step 1 created them)."""
    arns = {}
    for queue in rt.QUEUES:
        try:
            url = sqs.get_queue_url(QueueName=stage.queue_name(queue))["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            raise BootstrapError(
                f"queue {stage.queue_name(queue)} is missing: run python -m scripts.bootstrap "
                f"--stage {stage.name} first"
            ) from None
        arns[queue.logical_id] = queue_arn(sqs, url)
    return arns


def finish_rule_target(
    stage: Stage, events: EventBridgeClient, spec: rt.FunctionSpec, dlq: str
) -> None:
    """DLQ and retry policy on the rule's targets (Chalice puts them without either)."""
    rule = stage.rule_name(spec.name)
    try:
        targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    except events.exceptions.ResourceNotFoundException:
        raise BootstrapError(f"rule {rule} is missing: run chalice deploy first") from None
    if not targets:
        raise BootstrapError(f"rule {rule} has no target: run chalice deploy first")
    updated = [
        {
            **target,
            "DeadLetterConfig": {"Arn": dlq},
            "RetryPolicy": {**rt.RULE_RETRY_POLICY},
        }
        for target in targets
    ]
    answer = events.put_targets(Rule=rule, Targets=updated)  # type: ignore[arg-type]
    if answer.get("FailedEntryCount"):
        raise BootstrapError(f"rule {rule}: put_targets failed: {answer.get('FailedEntries')}")


def finish(stage: Stage, clients: Clients, archive_days: int = ARCHIVE_DAYS) -> None:
    """Step 3: the failure handling, dashboard and archive ``chalice deploy`` does not set."""
    rt.stage_stream(stage.config, stage.name)  # bootstrapped: the stream ARN is set
    arns = stage_queue_arns(stage, clients.sqs)
    aggregator = stage.function_name(rt.AGGREGATOR.name)
    mapping = find_mapping(clients.lambda_, stage.stream_arn, aggregator)
    failures = arns[rt.STREAM_FAILURE_QUEUE.logical_id]
    update_mapping(clients.lambda_, mapping["UUID"], stream_mapping_update(failures))
    print(f"stream trigger of {aggregator}: failure handling and filter set")
    for spec in rt.FUNCTIONS:
        if spec.consumes:
            function = stage.function_name(spec.name)
            queue_mapping = find_mapping(clients.lambda_, arns[spec.consumes], function)
            update_mapping(clients.lambda_, queue_mapping["UUID"], rt.RECOVERY_TRIGGER_SETTINGS)
            print(f"queue trigger of {function}: partial batch responses on")
    for spec in rt.RULE_TARGETS:
        function = stage.function_name(spec.name)
        finish_rule_target(
            stage, clients.events, spec, arns[spec.rule_dead_letter_queue.logical_id]
        )
        destination = arns[spec.async_failure_queue.logical_id]
        clients.lambda_.put_function_event_invoke_config(
            FunctionName=function,
            **rt.ASYNC_INVOKE_SETTINGS,
            DestinationConfig={"OnFailure": {"Destination": destination}},
        )
        print(f"{function}: rule DLQ, retry policy and on-failure destination set")
    ensure_dashboard(stage, clients.cloudwatch, clients.cloudwatch.meta.region_name)
    ensure_archive(stage, clients.events, rt.StreamArn.parse(stage.stream_arn), archive_days)
    print(f"dashboard {dashboard_name(stage)}; archive: {archive_days or 'none'} day(s)")


def dashboard_name(stage: Stage) -> str:
    return f"{stage.config['app_name']}-{stage.name}"


def archive_name(stage: Stage) -> str:
    return f"{stage.config['app_name']}-{stage.name}-aggregated"


def ensure_dashboard(stage: Stage, cloudwatch: Any, region: str) -> None:
    """The template's dashboard, with this stage's function and queue names."""
    body = ops_view.widgets(
        METRIC_NAMES,
        [stage.function_name(spec.name) for spec in rt.FUNCTIONS],
        stage.function_name(rt.AGGREGATOR.name),
        [stage.queue_name(queue) for queue in rt.QUEUES],
        region,
    )
    cloudwatch.put_dashboard(
        DashboardName=dashboard_name(stage), DashboardBody=json.dumps({"widgets": body})
    )


def ensure_archive(
    stage: Stage, events: EventBridgeClient, stream: rt.StreamArn | None, days: int
) -> None:
    """The template's archive of the aggregated events; ``days`` 0: none (and removed)."""
    name = archive_name(stage)
    try:
        events.describe_archive(ArchiveName=name)
        exists = True
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
        exists = False
    if days == 0:
        if exists:
            events.delete_archive(ArchiveName=name)
        return
    settings = stage.settings
    pattern = json.dumps({"source": [settings.event_source], "detail-type": [settings.detail_type]})
    if exists:
        events.update_archive(ArchiveName=name, EventPattern=pattern, RetentionDays=days)
    elif stream is not None:
        events.create_archive(
            ArchiveName=name,
            EventSourceArn=stream.arn("events", f"event-bus/{settings.event_bus_name}"),
            EventPattern=pattern,
            RetentionDays=days,
        )


# --- teardown -------------------------------------------------------------------------


def _deployed_functions(stage: Stage, lambda_: Any) -> list[str]:
    deployed = []
    for spec in rt.FUNCTIONS:
        name = stage.function_name(spec.name)
        try:
            lambda_.get_function(FunctionName=name)
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            continue
        deployed.append(name)
    return deployed


def teardown(stage: Stage, clients: Clients) -> None:
    """Delete the alarms, the queues and the table, once the app is gone."""
    deployed = _deployed_functions(stage, clients.lambda_)
    if deployed:
        raise BootstrapError(
            f"functions still deployed: {', '.join(deployed)}; run chalice delete --stage "
            f"{stage.name} first"
        )
    clients.cloudwatch.delete_alarms(AlarmNames=stage.alarm_names())
    try:
        clients.cloudwatch.delete_dashboards(DashboardNames=[dashboard_name(stage)])
    except ClientError as err:
        if error_code(err) not in ("ResourceNotFound", "DashboardNotFoundError"):
            raise
    ensure_archive(stage, clients.events, None, 0)
    for queue in rt.QUEUES:
        try:
            url = clients.sqs.get_queue_url(QueueName=stage.queue_name(queue))["QueueUrl"]
        except clients.sqs.exceptions.QueueDoesNotExist:
            continue
        clients.sqs.delete_queue(QueueUrl=url)
    if _describe_table(clients.dynamodb, stage.table_name) is not None:
        clients.dynamodb.delete_table(TableName=stage.table_name)
        clients.dynamodb.get_waiter("table_not_exists").wait(
            TableName=stage.table_name, WaiterConfig=TABLE_WAIT
        )
    print(f"deleted the alarms, the queues and table {stage.table_name}")


# --- command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Create what chalice deploy needs but does not create (see module doc)."
    )
    parser.add_argument("--stage", required=True)
    parser.add_argument("--config", type=Path, default=rt.CHALICE_DIR / "config.json")
    parser.add_argument("--alarm-topic-arn", help="SNS topic for the alarms (step 1)")
    parser.add_argument(
        "--archive-days",
        type=int,
        default=ARCHIVE_DAYS,
        help="days the archive keeps the aggregated events; 0: no archive (step 3)",
    )
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
            finish(stage, aws, args.archive_days)
        else:
            prepare(stage, aws, args.alarm_topic_arn)
            print(f"next: chalice deploy --stage {stage.name}, then")
            print(f"      python -m scripts.bootstrap --stage {stage.name} --finish")
            print(f"(python -m scripts.deploy --stage {stage.name} does all three)")
    except (BootstrapError, ConfigurationError, ClientError) as err:
        print(f"bootstrap: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
