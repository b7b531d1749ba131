"""``scripts.bootstrap`` and ``scripts.deploy`` against moto: the ``chalice deploy`` path.

AWS errors moto never produces (a new table's ``ContinuousBackupsUnavailableException``,
a settling mapping's ``ResourceInUseException``) are injected at the boto3 boundary with
a ``before-call`` handler, which answers instead of moto the way AWS would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import table
from chalicelib.observability import DEFAULT_NAMESPACE, METRIC_NAMES
from scripts import bootstrap, deploy
from scripts import dashboard as ops_view
from scripts import render_template as rt
from tests.deployment.test_template import EXPECTED_ACTIONS, INTERPRETER_RUNTIME

CHALICE_DIR = Path(__file__).resolve().parents[2] / ".chalice"
STAGE = "dev"
APP = "event-aggregator"
TABLE = "aggregator-events-dev"
REGION = "eu-west-1"  # any region: nothing in the scripts assumes one


def function_name(function: str) -> str:
    return rt.deployed_function_name(APP, STAGE, function)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between retried calls, recorded instead of waited."""
    waited: list[float] = []
    monkeypatch.setattr(bootstrap, "sleep", waited.append)
    return waited


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> Iterator[bootstrap.Clients]:
    """Clients of a fresh moto account, built from the standard environment."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield bootstrap.Clients.from_environment()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A copy of the committed config, in a ``.chalice`` folder of its own."""
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    return Path(shutil.copy(CHALICE_DIR / "config.json", chalice_dir / "config.json"))


def run(config_path: Path, clients: bootstrap.Clients, *options: str) -> int:
    return bootstrap.main(["--stage", STAGE, "--config", str(config_path), *options], clients)


def stage_variables(config_path: Path, stage: str = STAGE) -> dict[str, str]:
    variables: dict[str, str] = json.loads(config_path.read_text())["stages"][stage][
        "environment_variables"
    ]
    return variables


def queue_url(clients: bootstrap.Clients, queue: rt.QueueSpec) -> str:
    settings = rt.stage_settings(rt.read_config(CHALICE_DIR / "config.json"), STAGE)
    return clients.sqs.get_queue_url(QueueName=rt.queue_name(queue, settings))["QueueUrl"]


def queue_attributes(clients: bootstrap.Clients, queue: rt.QueueSpec) -> dict[str, str]:
    url = queue_url(clients, queue)
    found = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {str(key): value for key, value in found.items()}


def inject(
    client: Any, operation: str, code: str, times: int, message: str = "injected"
) -> list[int]:
    """Answer the next ``times`` calls of ``operation`` with AWS error ``code``."""
    calls: list[int] = []

    def answer(**_: Any) -> Any:
        calls.append(1)
        if len(calls) > times:
            return None  # on to moto
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
        return SimpleNamespace(status_code=400, headers={}), error

    client.meta.events.register(f"before-call.*.{operation}", answer)
    return calls


# --- what chalice deploy would leave ------------------------------------------------------


def _code() -> bytes:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return code.getvalue()


def chalice_deploy(clients: bootstrap.Clients, config_path: Path) -> None:
    """What ``chalice deploy`` leaves: the functions (on the interpreter's runtime), the
    bare stream and queue triggers, and the rules with a bare target ``Id: "1"``."""
    role = boto3.client("iam").create_role(RoleName="app", AssumeRolePolicyDocument="{}")
    arns = {}
    for spec in rt.FUNCTIONS:
        created = clients.lambda_.create_function(
            FunctionName=function_name(spec.name),
            Runtime=INTERPRETER_RUNTIME,
            Role=role["Role"]["Arn"],
            Handler="app.handler",
            Code={"ZipFile": _code()},
        )
        arns[spec.name] = created["FunctionArn"]
    stream_arn = stage_variables(config_path)["EVENTS_STREAM_ARN"]
    clients.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn,
        FunctionName=function_name("aggregator"),
        StartingPosition="TRIM_HORIZON",
    )
    failures = queue_attributes(clients, rt.STREAM_FAILURE_QUEUE)["QueueArn"]
    clients.lambda_.create_event_source_mapping(
        EventSourceArn=failures, FunctionName=function_name("stream_recovery"), BatchSize=10
    )
    for spec in rt.RULE_TARGETS:
        rule = rt.rule_name(APP, STAGE, spec.name)
        clients.events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["x"]}))
        clients.events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": arns[spec.name]}])


def mapping_of(clients: bootstrap.Clients, source_arn: str) -> dict[str, Any]:
    (mapping,) = clients.lambda_.list_event_source_mappings(EventSourceArn=source_arn)[
        "EventSourceMappings"
    ]
    found: dict[str, Any] = mapping
    return found


# --- step 1 ---------------------------------------------------------------------------


def test_prepare_creates_the_table_from_its_one_definition(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    described: Any = clients.dynamodb.describe_table(TableName=TABLE)["Table"]
    request = table.create_table_request(TABLE)
    assert described["TableStatus"] == "ACTIVE"
    assert described["KeySchema"] == request["KeySchema"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [index["IndexName"] for index in described["GlobalSecondaryIndexes"]] == [
        table.PENDING_INDEX
    ]
    assert described["StreamSpecification"] == request["StreamSpecification"]
    backups = clients.dynamodb.describe_continuous_backups(TableName=TABLE)
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


def test_point_in_time_recovery_is_retried_while_backups_are_unavailable(
    config_path: Path, clients: bootstrap.Clients, sleeps: list[float]
) -> None:
    # UpdateContinuousBackups: ContinuousBackupsUnavailableException while backups are
    # being enabled for a new table (DynamoDB API reference).
    calls = inject(
        clients.dynamodb, "UpdateContinuousBackups", "ContinuousBackupsUnavailableException", 3
    )
    assert run(config_path, clients) == 0
    assert len(calls) == 4
    assert sleeps == [bootstrap.DELAY_SECONDS] * 3
    backups = clients.dynamodb.describe_continuous_backups(TableName=TABLE)
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"


def test_point_in_time_recovery_retries_are_bounded(
    config_path: Path, clients: bootstrap.Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = inject(
        clients.dynamodb, "UpdateContinuousBackups", "ContinuousBackupsUnavailableException", 999
    )
    before = config_path.read_text()
    assert run(config_path, clients) == 1
    assert len(calls) == bootstrap.BACKUP_ATTEMPTS
    assert "ContinuousBackupsUnavailableException" in capsys.readouterr().err
    assert config_path.read_text() == before


def test_other_errors_are_not_retried(
    config_path: Path, clients: bootstrap.Clients, sleeps: list[float]
) -> None:
    calls = inject(clients.dynamodb, "UpdateContinuousBackups", "AccessDeniedException", 999)
    assert run(config_path, clients) == 1
    assert (len(calls), sleeps) == (1, [])


def test_prepare_writes_the_stream_arn_and_keeps_the_rest_of_the_config(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    before = json.loads(config_path.read_text())
    assert run(config_path, clients) == 0
    stream_arn = clients.dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    after = json.loads(config_path.read_text())
    assert after["stages"][STAGE]["environment_variables"]["EVENTS_STREAM_ARN"] == stream_arn
    before["stages"][STAGE]["environment_variables"]["EVENTS_STREAM_ARN"] = stream_arn
    assert after == before
    assert config_path.read_text() == json.dumps(after, indent=2) + "\n"


def test_prepare_twice_changes_nothing_the_second_time(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    files = {path: path.read_text() for path in config_path.parent.iterdir()}
    assert run(config_path, clients) == 0
    assert {path: path.read_text() for path in config_path.parent.iterdir()} == files
    assert clients.dynamodb.list_tables()["TableNames"] == [TABLE]
    assert len(clients.sqs.list_queues()["QueueUrls"]) == len(rt.QUEUES) == 6


def test_prepare_renders_the_stage_policies_with_the_real_arns(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    stream_arn = stage_variables(config_path)["EVENTS_STREAM_ARN"]
    config = rt.read_config(config_path)
    assert rt.stale_files(rt.stage_policy_files(config, STAGE, config_path.parent)) == []
    policy = json.loads((config_path.parent / rt.policy_file_name(STAGE, "aggregator")).read_text())
    read = next(s for s in policy["Statement"] if s["Sid"] == "ReadEventsStream")
    assert read["Resource"] == [stream_arn]


def test_chalice_deploy_policies_grant_the_template_calls_on_the_stage_resources(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    account = boto3.client("sts").get_caller_identity()["Account"]
    prefix = f":{REGION}:{account}:"
    logical_ids = {spec.name: spec.logical_id for spec in rt.FUNCTIONS}
    for function, logical_id in logical_ids.items():
        path = config_path.parent / rt.policy_file_name(STAGE, function)
        document = json.loads(path.read_text())
        grants = [
            (action, resource)
            for statement in document["Statement"]
            for action in statement["Action"]
            for resource in statement["Resource"]
        ]
        actions = {action for action, _ in grants} - {"logs:CreateLogGroup"}
        assert actions == EXPECTED_ACTIONS[logical_id], function
        for action, resource in grants:
            if resource == "*":
                assert action == "dynamodb:ListStreams"
                continue
            assert prefix in resource, (action, resource)
            if action.startswith("dynamodb:"):
                assert f":table/{TABLE}" in resource
            if action.startswith("logs:"):
                assert resource.endswith(f":log-group:/aws/lambda/{function_name(function)}:*")


def test_prepare_creates_every_queue_with_its_redrive_and_retention(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    for queue in rt.QUEUES:
        attributes = queue_attributes(clients, queue)
        assert attributes["MessageRetentionPeriod"] == "1209600"
    failures = queue_attributes(clients, rt.STREAM_FAILURE_QUEUE)
    dead_letters = queue_attributes(clients, rt.STREAM_FAILURE_DLQ)
    assert json.loads(failures["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letters["QueueArn"],
        "maxReceiveCount": 5,
    }
    assert int(failures["VisibilityTimeout"]) >= 60  # stream_recovery's timeout


@pytest.mark.parametrize("spec", rt.RULE_TARGETS, ids=lambda spec: spec.name)
def test_rule_dead_letter_queue_lets_only_its_rule_send(
    spec: rt.FunctionSpec, config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    attributes = queue_attributes(clients, spec.rule_dead_letter_queue)
    (statement,) = json.loads(attributes["Policy"])["Statement"]
    account = boto3.client("sts").get_caller_identity()["Account"]
    rule = f"arn:aws:events:{REGION}:{account}:rule/{APP}-{STAGE}-{spec.name}-event"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == attributes["QueueArn"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule}}


def test_prepare_creates_the_alarms_of_the_template(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    topic = f"arn:aws:sns:{REGION}:123456789012:ops"
    assert run(config_path, clients, "--alarm-topic-arn", topic) == 0
    alarms = clients.cloudwatch.describe_alarms()["MetricAlarms"]
    by_metric: dict[str, list[str]] = {}
    for alarm in alarms:
        by_metric.setdefault(alarm["MetricName"], []).append(alarm["Dimensions"][0]["Value"])
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic]
    settings = rt.stage_settings(rt.read_config(config_path), STAGE)
    assert sorted(by_metric["ApproximateNumberOfMessagesVisible"]) == sorted(
        rt.queue_name(queue, settings) for queue in rt.QUEUES if not queue.consumed
    )
    assert by_metric["ApproximateAgeOfOldestMessage"] == [f"{TABLE}-stream-failures"]
    assert sorted(by_metric["Errors"]) == sorted(function_name(s.name) for s in rt.FUNCTIONS)
    assert by_metric["IteratorAge"] == [function_name("aggregator")]


def test_prepare_refuses_the_local_stage(config_path: Path, clients: bootstrap.Clients) -> None:
    args = ["--stage", "local", "--config", str(config_path)]
    assert bootstrap.main(args, clients) == 1
    assert clients.dynamodb.list_tables()["TableNames"] == []


def test_prepare_refuses_a_table_without_a_stream(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    request = table.create_table_request(TABLE)
    del request["StreamSpecification"]
    clients.dynamodb.create_table(**request)
    before = config_path.read_text()
    assert run(config_path, clients) == 1
    assert config_path.read_text() == before


# --- step 3 ---------------------------------------------------------------------------


def test_finish_gives_the_stream_trigger_failure_handling_and_the_filter(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    assert run(config_path, clients, "--finish") == 0
    mapping = mapping_of(clients, stage_variables(config_path)["EVENTS_STREAM_ARN"])
    queue_arn = queue_attributes(clients, rt.STREAM_FAILURE_QUEUE)["QueueArn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == rt.STREAM_FAILURE_HANDLING["MaximumRetryAttempts"]
    assert mapping["MaximumRecordAgeInSeconds"] == 3600
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn
    assert mapping["FilterCriteria"] == rt.filter_criteria()


def test_finish_turns_on_partial_batch_responses_for_stream_recovery(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    assert run(config_path, clients, "--finish") == 0
    queue_arn = queue_attributes(clients, rt.STREAM_FAILURE_QUEUE)["QueueArn"]
    mapping = mapping_of(clients, queue_arn)
    assert mapping["FunctionArn"].endswith(":function:" + function_name("stream_recovery"))
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("spec", rt.RULE_TARGETS, ids=lambda spec: spec.name)
def test_finish_gives_each_rule_target_a_dead_letter_queue_and_retry_policy(
    spec: rt.FunctionSpec, config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    assert run(config_path, clients, "--finish") == 0
    rule = rt.rule_name(APP, STAGE, spec.name)
    (target,) = clients.events.list_targets_by_rule(Rule=rule)["Targets"]
    dlq = queue_attributes(clients, spec.rule_dead_letter_queue)["QueueArn"]
    assert target["Id"] == "1" and target["Arn"].endswith(":function:" + function_name(spec.name))
    assert target["DeadLetterConfig"] == {"Arn": dlq}
    assert target["RetryPolicy"] == rt.RULE_RETRY_POLICY


@pytest.mark.parametrize("spec", rt.RULE_TARGETS, ids=lambda spec: spec.name)
def test_finish_gives_each_rule_target_an_on_failure_destination(
    spec: rt.FunctionSpec, config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    assert run(config_path, clients, "--finish") == 0
    config = clients.lambda_.get_function_event_invoke_config(FunctionName=function_name(spec.name))
    destination = queue_attributes(clients, spec.async_failure_queue)["QueueArn"]
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == destination


def test_finish_retries_the_mapping_update_while_it_is_in_use(
    config_path: Path, clients: bootstrap.Clients, sleeps: list[float]
) -> None:
    # Lambda: ResourceInUseException "... The event source mapping is in use ..." while it
    # is still being created or updated; Chalice's deployer retries it (awsclient.py).
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    message = "Cannot update the event source mapping because it is in use."
    calls = inject(
        clients.lambda_, "UpdateEventSourceMapping", "ResourceInUseException", 2, message
    )
    assert run(config_path, clients, "--finish") == 0
    assert sleeps == [bootstrap.DELAY_SECONDS] * 2
    assert len(calls) == 2 + 2  # two refused, then the stream and the queue trigger
    mapping = mapping_of(clients, stage_variables(config_path)["EVENTS_STREAM_ARN"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_finish_gives_up_on_a_mapping_that_stays_in_use(
    config_path: Path, clients: bootstrap.Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    calls = inject(clients.lambda_, "UpdateEventSourceMapping", "ResourceInUseException", 999)
    assert run(config_path, clients, "--finish") == 1
    assert len(calls) == bootstrap.MAPPING_ATTEMPTS
    assert "ResourceInUseException" in capsys.readouterr().err


def test_finish_before_chalice_deploy_fails(config_path: Path, clients: bootstrap.Clients) -> None:
    assert run(config_path, clients) == 0
    assert run(config_path, clients, "--finish") == 1


def test_finish_refuses_a_stage_that_was_not_bootstrapped(
    config_path: Path, clients: bootstrap.Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_path, clients, "--finish") == 1
    assert f"python -m scripts.deploy --stage {STAGE}" in capsys.readouterr().err


# --- scripts.deploy: the three steps as one command --------------------------------------


def deploy_main(
    config_path: Path, clients: bootstrap.Clients, runner: Callable[[list[str], Path], int]
) -> int:
    return deploy.main(["--stage", STAGE, "--config", str(config_path)], clients, runner)


def test_deploy_runs_bootstrap_chalice_deploy_and_finish_in_one_command(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    commands: list[list[str]] = []

    def chalice(command: list[str], project_dir: Path) -> int:
        commands.append(command)
        assert project_dir == config_path.parent.parent
        # bootstrap ran first: policy files and the stream ARN are in place.
        assert stage_variables(config_path)["EVENTS_STREAM_ARN"]
        assert (config_path.parent / rt.policy_file_name(STAGE, "aggregator")).is_file()
        chalice_deploy(clients, config_path)
        return 0

    assert deploy_main(config_path, clients, chalice) == 0
    # The chalice of this interpreter: its functions get INTERPRETER_RUNTIME.
    chalice_bin = str(Path(sys.executable).with_name("chalice"))
    assert commands == [[chalice_bin, "deploy", "--stage", STAGE]]
    mapping = mapping_of(clients, stage_variables(config_path)["EVENTS_STREAM_ARN"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for spec in rt.FUNCTIONS:
        described = clients.lambda_.get_function(FunctionName=function_name(spec.name))
        assert described["Configuration"]["Runtime"] == INTERPRETER_RUNTIME


def test_deploy_stops_when_chalice_deploy_fails(
    config_path: Path, clients: bootstrap.Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy_main(config_path, clients, lambda command, project_dir: 2) == 2
    assert f"run python -m scripts.deploy --stage {STAGE} again" in capsys.readouterr().err


def test_deploy_again_after_a_redeploy_puts_the_rule_settings_back(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    def chalice(command: list[str], project_dir: Path) -> int:
        if not clients.lambda_.list_functions()["Functions"]:
            chalice_deploy(clients, config_path)
        for spec in rt.RULE_TARGETS:  # chalice deploy puts the bare target again
            rule = rt.rule_name(APP, STAGE, spec.name)
            arn = clients.lambda_.get_function(FunctionName=function_name(spec.name))
            function_arn: str = arn["Configuration"]["FunctionArn"]
            clients.events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": function_arn}])
        return 0

    assert deploy_main(config_path, clients, chalice) == 0
    assert deploy_main(config_path, clients, chalice) == 0
    for spec in rt.RULE_TARGETS:
        (target,) = clients.events.list_targets_by_rule(Rule=rt.rule_name(APP, STAGE, spec.name))[
            "Targets"
        ]
        assert "DeadLetterConfig" in target and target["RetryPolicy"] == rt.RULE_RETRY_POLICY


# --- teardown -------------------------------------------------------------------------


def test_teardown_waits_for_chalice_delete_then_removes_everything(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    chalice_deploy(clients, config_path)
    assert run(config_path, clients, "--teardown") == 1
    assert clients.dynamodb.list_tables()["TableNames"] == [TABLE]
    for spec in rt.FUNCTIONS:
        clients.lambda_.delete_function(FunctionName=function_name(spec.name))
    assert run(config_path, clients, "--teardown") == 0
    assert clients.dynamodb.list_tables()["TableNames"] == []
    assert clients.sqs.list_queues().get("QueueUrls", []) == []
    assert clients.cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_deploy_region_option_sets_the_region_of_every_step(
    config_path: Path, clients: bootstrap.Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []

    def chalice(command: list[str], project_dir: Path) -> int:
        seen.append(os.environ.get("AWS_REGION"))  # what the chalice subprocess inherits
        return 1

    monkeypatch.setenv("AWS_REGION", REGION)  # restored after the test
    argv = ["--stage", STAGE, "--config", str(config_path), "--region", "ap-southeast-2"]
    assert deploy.main(argv, None, chalice) == 1
    assert seen == ["ap-southeast-2"]
    tables = boto3.client("dynamodb", region_name="ap-southeast-2").list_tables()
    assert tables["TableNames"] == [TABLE]
    assert clients.dynamodb.list_tables()["TableNames"] == []  # nothing in eu-west-1


def test_deploy_refuses_an_interpreter_whose_runtime_lambda_does_not_offer(
    config_path: Path, clients: bootstrap.Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "interpreter_runtime", lambda: "python3.11")
    assert deploy_main(config_path, clients, lambda command, project_dir: 0) == 1
    assert clients.dynamodb.list_tables()["TableNames"] == []


def test_this_interpreter_deploys_a_supported_runtime() -> None:
    assert deploy.interpreter_runtime() == INTERPRETER_RUNTIME
    assert INTERPRETER_RUNTIME in deploy.SUPPORTED_RUNTIMES


def test_finish_puts_the_dashboard_and_the_archive_of_the_template(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    config = config_path
    assert run(config, clients) == 0
    chalice_deploy(clients, config)
    assert run(config, clients, "--finish") == 0
    stage = bootstrap.load_stage(config, STAGE)
    body = json.loads(
        clients.cloudwatch.get_dashboard(DashboardName=bootstrap.dashboard_name(stage))[
            "DashboardBody"
        ]
    )
    lines = [line for w in body["widgets"] for line in w["properties"]["metrics"]]
    assert {line[1] for line in lines if line[0] == DEFAULT_NAMESPACE} == set(METRIC_NAMES)
    errors = {line[3] for line in lines if line[:2] == ["AWS/Lambda", "Errors"]}
    assert errors == {stage.function_name(spec.name) for spec in rt.FUNCTIONS}
    archive = clients.events.describe_archive(ArchiveName=bootstrap.archive_name(stage))
    assert archive["RetentionDays"] == bootstrap.ARCHIVE_DAYS
    assert json.loads(archive["EventPattern"]) == {
        "source": [stage.settings.event_source],
        "detail-type": [stage.settings.detail_type],
    }
    assert run(config, clients, "--finish", "--archive-days", "0") == 0
    names = [a["ArchiveName"] for a in clients.events.list_archives()["Archives"]]
    assert bootstrap.archive_name(stage) not in names


def test_a_stage_with_chalice_xray_gets_the_xray_write_calls(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    config = json.loads(config_path.read_text())
    assert run(config_path, clients) == 0
    untraced = json.loads(
        (config_path.parent / rt.policy_file_name(STAGE, "aggregator")).read_text()
    )
    assert not [s for s in untraced["Statement"] if s["Action"][0].startswith("xray:")]
    config["stages"][STAGE]["xray"] = True
    config_path.write_text(json.dumps(config))
    assert run(config_path, clients) == 0
    for spec in rt.FUNCTIONS:
        document = json.loads(
            (config_path.parent / rt.policy_file_name(STAGE, spec.name)).read_text()
        )
        xray = [s for s in document["Statement"] if s["Action"][0].startswith("xray:")]
        assert xray == [ops_view.tracing_statement()["Fn::If"][1]], spec.name
