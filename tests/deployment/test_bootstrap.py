"""``scripts.bootstrap`` against moto: table and stream, config, stream trigger, teardown."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import table
from scripts import bootstrap
from scripts import render_template as rt

CHALICE_DIR = Path(__file__).resolve().parents[2] / ".chalice"
STAGE = "dev"
TABLE = "aggregator-events-dev"
AGGREGATOR = "event-aggregator-dev-aggregator"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[bootstrap.Clients]:
    """Clients of a fresh moto account, built from the standard environment."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
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


def deploy_aggregator(clients: bootstrap.Clients, stream_arn: str) -> str:
    """What ``chalice deploy`` leaves: the aggregator and its bare stream trigger."""
    role = boto3.client("iam").create_role(RoleName="aggregator", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def aggregate(event, context):\n    return {}\n")
    clients.lambda_.create_function(
        FunctionName=AGGREGATOR,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.aggregate",
        Code={"ZipFile": code.getvalue()},
    )
    mapping = clients.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=AGGREGATOR, StartingPosition="LATEST"
    )
    uuid: str = mapping["UUID"]
    return uuid


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
    assert len(clients.sqs.list_queues()["QueueUrls"]) == 1


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


def test_prepare_creates_the_failure_queue_and_its_alarm(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    queue = rt.failure_queue_name(TABLE)
    url = clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert attributes["Attributes"]["MessageRetentionPeriod"] == "1209600"
    alarm = clients.cloudwatch.describe_alarms(AlarmNames=[queue])["MetricAlarms"][0]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


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


def test_finish_gives_the_stream_trigger_failure_handling_and_the_filter(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    uuid = deploy_aggregator(clients, stage_variables(config_path)["EVENTS_STREAM_ARN"])
    assert run(config_path, clients, "--finish") == 0
    mapping = clients.lambda_.get_event_source_mapping(UUID=uuid)
    queue_url = clients.sqs.get_queue_url(QueueName=rt.failure_queue_name(TABLE))["QueueUrl"]
    queue_arn = clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == rt.STREAM_FAILURE_HANDLING["MaximumRetryAttempts"]
    assert mapping["MaximumRecordAgeInSeconds"] == 3600
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == queue_arn["Attributes"]["QueueArn"]
    assert mapping["FilterCriteria"] == rt.filter_criteria()


def test_finish_before_chalice_deploy_fails(config_path: Path, clients: bootstrap.Clients) -> None:
    assert run(config_path, clients) == 0
    assert run(config_path, clients, "--finish") == 1


def test_teardown_waits_for_chalice_delete_then_removes_everything(
    config_path: Path, clients: bootstrap.Clients
) -> None:
    assert run(config_path, clients) == 0
    deploy_aggregator(clients, stage_variables(config_path)["EVENTS_STREAM_ARN"])
    assert run(config_path, clients, "--teardown") == 1
    assert clients.dynamodb.list_tables()["TableNames"] == [TABLE]
    clients.lambda_.delete_function(FunctionName=AGGREGATOR)
    assert run(config_path, clients, "--teardown") == 0
    assert clients.dynamodb.list_tables()["TableNames"] == []
    assert clients.sqs.list_queues().get("QueueUrls", []) == []
    assert clients.cloudwatch.describe_alarms()["MetricAlarms"] == []
