"""The packaged stack: ``chalice package --merge-template`` output, checked offline.

The template and zip come from ``build/package`` when ``make package`` left a dev build
newer than every input, and are packaged afresh into a temporary folder otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from chalicelib import rules, table
from chalicelib.aggregator import source_change
from chalicelib.config import Settings
from local.eventbridge import matches, validate
from scripts import render_template, validate_template

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHALICE_DIR = PROJECT_DIR / ".chalice"
BUILD_DIR = PROJECT_DIR / "build" / "package"
STAGE = "dev"
PACKAGE_FILES = ("sam.json", "deployment.zip")
MAX_ZIP_BYTES = 5 * 1024 * 1024

TABLE_ARN = {"Fn::GetAtt": ["EventsTable", "Arn"]}
STREAM_ARN = {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
INDEX_ARN = {"Fn::Sub": "${EventsTable.Arn}/index/" + table.PENDING_INDEX}
TABLE_STREAMS = {"Fn::Sub": "${EventsTable.Arn}/stream/*"}
QUEUE_ARN = {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}

LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
STREAM_READ = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
# What each function calls (chalicelib/store.py, chalicelib/publisher.py), and nothing else.
EXPECTED_ACTIONS = {
    "APIHandler": LOGS | {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"},
    "Aggregator": LOGS
    | STREAM_READ
    | {"dynamodb:Query", "dynamodb:UpdateItem", "events:PutEvents", "sqs:SendMessage"},
    "InvoiceProcessing": LOGS | {"dynamodb:Query", "dynamodb:UpdateItem"},
    "ProblemHandler": LOGS | {"dynamodb:Query", "dynamodb:UpdateItem"},
    "TimeoutSweep": LOGS | {"dynamodb:Query", "events:PutEvents"},
}


# --- fixtures -------------------------------------------------------------------------


def _inputs() -> list[Path]:
    """Everything ``chalice package`` reads."""
    return [
        PROJECT_DIR / "app.py",
        PROJECT_DIR / "requirements.txt",
        *PROJECT_DIR.glob("chalicelib/**/*.py"),
        *CHALICE_DIR.glob("*.json"),
    ]


def _is_fresh_dev_build(folder: Path) -> bool:
    paths = [folder / name for name in PACKAGE_FILES]
    if not all(path.is_file() for path in paths):
        return False
    built = min(path.stat().st_mtime for path in paths)
    if built <= max(path.stat().st_mtime for path in _inputs()):
        return False
    return f"stage={STAGE}:" in (folder / "sam.json").read_text()


def _package_env() -> dict[str, str]:
    """This environment minus the app's settings (the tests set some); chalice package
    needs a region only to name the Lambda service principal."""
    config = render_template.read_config(CHALICE_DIR / "config.json")
    app_variables = set(config.get("environment_variables", {}))
    for stage in config["stages"].values():
        app_variables |= set(stage.get("environment_variables", {}))
    drop = app_variables | {"AWS_ENDPOINT_URL", "AWS_PROFILE"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    return env


def _package(out: Path) -> None:
    # Tests import chalicelib, which writes bytecode caches; Lambda must not get them.
    for cache in (PROJECT_DIR / "chalicelib").rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice), "package", "--stage", STAGE]
    command += ["--merge-template", str(CHALICE_DIR / render_template.MERGE_TEMPLATE), str(out)]
    subprocess.run(
        command, cwd=PROJECT_DIR, env=_package_env(), check=True, capture_output=True, timeout=300
    )


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``sam.json`` and ``deployment.zip`` of the current sources."""
    out = tmp_path_factory.mktemp("package")
    if _is_fresh_dev_build(BUILD_DIR):
        try:
            for name in PACKAGE_FILES:
                shutil.copy2(BUILD_DIR / name, out / name)
            return out
        except FileNotFoundError:  # a concurrent `make package` removed it
            pass
    shutil.rmtree(out)
    _package(out)
    return out


@pytest.fixture(scope="session")
def template(package_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package_dir / "sam.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def resources(template: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"]
    return found


@pytest.fixture(scope="session")
def functions(resources: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="session")
def settings() -> Settings:
    config = render_template.read_config(CHALICE_DIR / "config.json")
    return render_template.stage_settings(config, STAGE)


@pytest.fixture(scope="session")
def stream_event(functions: Mapping[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = functions["Aggregator"]["Properties"]["Events"][
        "AggregatorDynamodbEventSource"
    ]
    return event


@pytest.fixture(scope="session")
def expanded(template: dict[str, Any]) -> dict[str, Any]:
    return validate_template.expand(template)


def _statements(resources: Mapping[str, Any], function: Mapping[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = resources[role_id]["Properties"]["Policies"]
    assert len(policies) == 1, f"{role_id}: Chalice's policy was not replaced"
    statements: list[dict[str, Any]] = policies[0]["PolicyDocument"]["Statement"]
    return statements


def _grants(statements: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Every (action, resource) pair the statements allow."""
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        targets = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [targets] if isinstance(targets, str | dict) else targets:
                yield action, resource


# --- generated files ------------------------------------------------------------------


def test_committed_generated_files_are_in_sync() -> None:
    assert render_template.main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_merge_template(tmp_path: Path) -> None:
    copy = tmp_path / ".chalice"
    shutil.copytree(CHALICE_DIR, copy, ignore=shutil.ignore_patterns("deployments", "deployed"))
    (copy / render_template.MERGE_TEMPLATE).write_text("{}\n")
    assert render_template.main(["--check", "--chalice-dir", str(copy)]) == 1


# --- table, stream trigger, alarm ------------------------------------------------------


def test_events_table_is_the_one_table_definition(resources: Mapping[str, Any]) -> None:
    events_table = resources["EventsTable"]
    properties = events_table["Properties"]
    assert events_table["Type"] == "AWS::DynamoDB::Table"
    assert properties == table.cloudformation_properties({"Fn::Sub": "${AWS::StackName}-events"})
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["StreamSpecification"] == {"StreamViewType": table.STREAM_VIEW_TYPE}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert events_table["DeletionPolicy"] == events_table["UpdateReplacePolicy"] == "Retain"


def test_functions_use_the_stack_table_and_keep_the_stage_settings(
    functions: Mapping[str, Any],
) -> None:
    config = render_template.read_config(CHALICE_DIR / "config.json")
    stage_env = render_template.stage_environment(config, STAGE)
    assert set(functions) == set(EXPECTED_ACTIONS)
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == {"Ref": "EventsTable"}
        assert variables["EVENTS_STREAM_ARN"] == STREAM_ARN
        kept = {key: value for key, value in variables.items() if isinstance(value, str)}
        assert kept == {
            key: value
            for key, value in stage_env.items()
            if key not in ("TABLE_NAME", "EVENTS_STREAM_ARN")
        }


def test_template_holds_no_hand_copied_name_or_arn(
    template: Mapping[str, Any], settings: Settings
) -> None:
    text = json.dumps(template)
    for copied in (settings.table_name, settings.stream_arn, "arn:aws:dynamodb", "123456789012"):
        assert copied not in text


def test_stream_trigger_reads_the_table_stream_and_is_failure_safe(
    stream_event: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    properties = stream_event["Properties"]
    assert stream_event["Type"] == "DynamoDB"
    assert properties["Stream"] == STREAM_ARN
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["ParallelizationFactor"] == 10
    assert 0 <= properties["MaximumRetryAttempts"] <= 100
    # Bounded, and well inside the stream's 24 h so a failed range can still be replayed.
    assert 60 <= properties["MaximumRecordAgeInSeconds"] <= 6 * 3600
    assert properties["DestinationConfig"] == {"OnFailure": {"Destination": QUEUE_ARN}}
    assert resources["StreamFailureQueue"]["Type"] == "AWS::SQS::Queue"


def test_expanded_event_source_mapping_keeps_failure_handling(
    expanded: Mapping[str, Any], stream_event: Mapping[str, Any]
) -> None:
    mappings = [
        resource["Properties"]
        for resource in expanded["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert len(mappings) == 1
    mapping, wanted = mappings[0], stream_event["Properties"]
    assert mapping["EventSourceArn"] == STREAM_ARN
    for key in (
        "FunctionResponseTypes",
        "BisectBatchOnFunctionError",
        "ParallelizationFactor",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "DestinationConfig",
        "FilterCriteria",
    ):
        assert mapping[key] == wanted[key], key


def _stream_record(event_name: str, sort_key: str, **new_image: str) -> dict[str, Any]:
    keys = {table.PARTITION_KEY: {"S": "7"}, table.SORT_KEY: {"S": sort_key}}
    data: dict[str, Any] = {"Keys": keys, "SequenceNumber": "100", "StreamViewType": "NEW_IMAGE"}
    if event_name != "REMOVE":
        data["NewImage"] = {**keys, **{name: {"S": value} for name, value in new_image.items()}}
    return {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": data}


KEPT_RECORDS = [
    _stream_record("INSERT", "In Stock", Status="passed"),
    _stream_record("MODIFY", "Account Check", Status="failed", Reason="blocked"),
]
DROPPED_RECORDS = [
    _stream_record("REMOVE", "In Stock"),
    _stream_record("INSERT", table.ORDER_RECORD, Deadline="2026-01-01T00:00:00.000000Z"),
    _stream_record("MODIFY", table.ORDER_RECORD, Outcome="invoiced"),
    _stream_record("INSERT", "In Stock", Status="maybe"),
    _stream_record("INSERT", "In Stock"),
]


@pytest.mark.parametrize("record", KEPT_RECORDS + DROPPED_RECORDS)
def test_stream_filter_invokes_the_aggregator_only_for_records_it_uses(
    stream_event: Mapping[str, Any], record: dict[str, Any]
) -> None:
    filters = stream_event["Properties"]["FilterCriteria"]["Filters"]
    assert len(filters) == 1
    pattern = validate(filters[0]["Pattern"])
    assert matches(pattern, record) == (source_change(record, 0) is not None)


def test_failure_queue_depth_raises_an_alarm(resources: Mapping[str, Any]) -> None:
    alarm = resources["StreamFailureAlarm"]
    properties = alarm["Properties"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    assert properties["Namespace"] == "AWS/SQS"
    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}}
    ]
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0


def test_rule_patterns_are_the_ones_chalicelib_rules_builds(
    functions: Mapping[str, Any], expanded: Mapping[str, Any], settings: Settings
) -> None:
    expected = [rules.invoice_pattern(settings), rules.problem_pattern(settings)]
    events = [
        functions["InvoiceProcessing"]["Properties"]["Events"]["InvoiceProcessingEvent"],
        functions["ProblemHandler"]["Properties"]["Events"]["ProblemHandlerEvent"],
    ]
    assert [event["Properties"]["Pattern"] for event in events] == expected
    deployed = [
        resource["Properties"].get("EventPattern")
        for resource in expanded["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
    ]
    assert sorted(map(json.dumps, filter(None, deployed))) == sorted(map(json.dumps, expected))


# --- least privilege ------------------------------------------------------------------


def test_each_function_has_a_role_of_its_own(
    functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    roles = [function["Properties"]["Role"]["Fn::GetAtt"][0] for function in functions.values()]
    assert len(set(roles)) == len(functions) == 5
    assert all(resources[role]["Type"] == "AWS::IAM::Role" for role in roles)
    assert "DefaultRole" not in resources


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_role_allows_exactly_the_calls_its_function_makes(
    name: str, functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    grants = list(_grants(_statements(resources, functions[name])))
    assert {action for action, _ in grants} == EXPECTED_ACTIONS[name]
    assert all("*" not in action and action != "dynamodb:Scan" for action, _ in grants)


def _allowed_resources(name: str, settings: Settings) -> dict[str, list[Any]]:
    """The only resource each kind of action may name."""
    log_group = {"Fn::GetAtt": [f"{name}LogGroup", "Arn"]}
    bus = (
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/"
        + settings.event_bus_name
    )
    index = [INDEX_ARN] if name == "TimeoutSweep" else []
    return {
        "logs": [log_group],
        "dynamodb:Query": [TABLE_ARN, *index],
        "dynamodb:PutItem": [TABLE_ARN],
        "dynamodb:UpdateItem": [TABLE_ARN],
        "dynamodb:ListStreams": [TABLE_STREAMS],
        "dynamodb:DescribeStream": [STREAM_ARN],
        "dynamodb:GetRecords": [STREAM_ARN],
        "dynamodb:GetShardIterator": [STREAM_ARN],
        "events:PutEvents": [{"Fn::Sub": bus}],
        "sqs:SendMessage": [QUEUE_ARN],
    }


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_role_names_only_its_own_resources(
    name: str, functions: Mapping[str, Any], resources: Mapping[str, Any], settings: Settings
) -> None:
    allowed = _allowed_resources(name, settings)
    grants = list(_grants(_statements(resources, functions[name])))
    for action, resource in grants:
        key = "logs" if action.startswith("logs:") else action
        assert resource in allowed[key], (action, resource)
    if name == "TimeoutSweep":
        assert ("dynamodb:Query", INDEX_ARN) in grants


def test_functions_log_only_to_log_groups_the_stack_creates(
    functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    for name, function in functions.items():
        log_group = resources[f"{name}LogGroup"]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] > 0
        function_name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert log_group["Properties"]["LogGroupName"] == {
            "Fn::Sub": "/aws/lambda/" + function_name
        }


def test_each_wildcard_resource_is_explained(
    functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    for function in functions.values():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        reasons = role["Metadata"]["WildcardResources"]
        wildcards = {"logs"}  # every log group ARN ends in ":*"
        if TABLE_STREAMS in [r for _, r in _grants(_statements(resources, function))]:
            wildcards.add("streams")
        assert set(reasons) == wildcards
        assert all(reason.strip() for reason in reasons.values())


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_chalice_deploy_policies_grant_the_same_calls_on_the_stage_table(stage: str) -> None:
    config = render_template.read_config(CHALICE_DIR / "config.json")
    stage_settings = render_template.stage_settings(config, stage)
    logical_ids = {spec.name: spec.logical_id for spec in render_template.FUNCTIONS}
    for function, logical_id in logical_ids.items():
        path = CHALICE_DIR / render_template.policy_file_name(stage, function)
        grants = list(_grants(json.loads(path.read_text())["Statement"]))
        assert {action for action, _ in grants} - {"logs:CreateLogGroup"} == EXPECTED_ACTIONS[
            logical_id
        ]
        for action, resource in grants:
            assert resource != "*" and "*" not in action
            if action.startswith("dynamodb:"):
                assert f":table/{stage_settings.table_name}" in resource
            if resource.endswith("*"):
                assert resource.endswith(("/stream/*", ":*"))
                assert "log-group:/aws/lambda/" in resource or "/stream/" in resource


# --- validation and the zip -----------------------------------------------------------


def test_template_and_its_expansion_pass_cfn_lint(package_dir: Path) -> None:
    reports = validate_template.validate(package_dir / "sam.json")
    assert [report.name for report in reports] == ["SAM template", "expanded template"]
    for report in reports:
        assert report.errors == [] and report.warnings == [], report.summary()


def test_deployment_zip_holds_only_what_lambda_needs(package_dir: Path) -> None:
    path = package_dir / "deployment.zip"
    names = zipfile.ZipFile(path).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"app.py", "chalicelib", "chalice", "aws_lambda_powertools"} <= tops
    forbidden = {
        "boto3",
        "botocore",
        "s3transfer",
        "tests",
        "local",
        "bench",
        "scripts",
        ".chalice",
    }
    assert not tops & forbidden
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    # Pure Python: what makes LAMBDA_RUNTIME differing from the packaging interpreter safe.
    assert not [name for name in names if name.endswith((".so", ".pyd"))]
    assert path.stat().st_size < MAX_ZIP_BYTES


def test_functions_run_on_the_pinned_runtime(functions: Mapping[str, Any]) -> None:
    runtimes = {function["Properties"]["Runtime"] for function in functions.values()}
    assert runtimes == {render_template.LAMBDA_RUNTIME}
