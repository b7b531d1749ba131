"""The packaged stack: ``chalice package --merge-template`` output, checked offline.

The template and zip come from ``build/package`` when ``make package`` left a dev build
newer than every input, and are packaged afresh into a temporary folder otherwise.
"""

from __future__ import annotations

import json
import os
import re
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
from chalicelib.observability import DECISION_LATENCY, DEFAULT_NAMESPACE, METRIC_NAMES, SERVICE
from local.eventbridge import matches, validate
from scripts import dashboard as ops_view
from scripts import package, render_template, validate_template

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHALICE_DIR = PROJECT_DIR / ".chalice"
BUILD_DIR = PROJECT_DIR / "build" / "package"
STAGE = "dev"
PACKAGE_FILES = ("sam.json", "deployment.zip")
MAX_ZIP_BYTES = 5 * 1024 * 1024
# The runtime Chalice derives from the interpreter that packages (and deploys).
INTERPRETER_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
# AWS region names (us-east-1, eu-west-3, us-gov-west-1, ap-southeast-2, ...) and account
# ids (12 digits) as they would appear in an ARN or a literal.
REGION_LITERAL = re.compile(r"\b[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d\b")
ACCOUNT_LITERAL = re.compile(r"(?<!\d)\d{12}(?!\d)")

TABLE_ARN = {"Fn::GetAtt": ["EventsTable", "Arn"]}
STREAM_ARN = {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
INDEX_ARN = {"Fn::Sub": "${EventsTable.Arn}/index/" + table.PENDING_INDEX}
QUEUE_ARN = {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
QUEUE_CONSUMER = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
}
# What each function calls, from the shared contract's least-privilege list (issue 9):
# written out here, not derived from scripts.render_template.
EXPECTED_ACTIONS = {
    "APIHandler": LOGS | {"dynamodb:PutItem", "dynamodb:Query"},
    "Aggregator": LOGS
    | STREAM_READ
    | {
        "dynamodb:ListStreams",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "events:PutEvents",
        "sqs:SendMessage",
    },
    "InvoiceProcessing": LOGS | {"dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage"},
    "ProblemHandler": LOGS | {"dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage"},
    "TimeoutSweep": LOGS
    | {
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchGetItem",
        "events:PutEvents",
    },
    "StreamRecovery": LOGS
    | STREAM_READ
    | QUEUE_CONSUMER
    | {
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "events:PutEvents",
    },
}
# The queue each function may send to or consume, and nothing else.
EXPECTED_QUEUE = {
    "Aggregator": "StreamFailureQueue",
    "InvoiceProcessing": "InvoiceProcessingAsyncFailureQueue",
    "ProblemHandler": "ProblemHandlerAsyncFailureQueue",
    "StreamRecovery": "StreamFailureQueue",
}
RULE_TARGETS = {
    "InvoiceProcessing": "InvoiceProcessingEvent",
    "ProblemHandler": "ProblemHandlerEvent",
}


# --- fixtures -------------------------------------------------------------------------


def _inputs() -> list[Path]:
    """Everything ``chalice package`` reads."""
    return [
        PROJECT_DIR / "app.py",
        PROJECT_DIR / "requirements.txt",
        PROJECT_DIR / "scripts" / "package.py",
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


def _package_env(region: str | None = None) -> dict[str, str]:
    """This environment minus the app's settings (the tests set some) and the region,
    as on a machine with no AWS configuration at all (or with ``region``)."""
    config = render_template.read_config(CHALICE_DIR / "config.json")
    app_variables = set(config.get("environment_variables", {}))
    for stage in config["stages"].values():
        app_variables |= set(stage.get("environment_variables", {}))
    drop = app_variables | {"AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"}
    drop |= {"EVENTS_STREAM_ARN", "STREAM_FAILURE_QUEUE"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return env


def _package(out: Path, region: str | None = None) -> None:
    package.package(STAGE, out, PROJECT_DIR, _package_env(region))


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
    # The X-Ray statement, granted only while tracing is on: see the tracing tests.
    return [statement for statement in statements if "Fn::If" not in statement]


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
        assert variables["STREAM_FAILURE_QUEUE"] == {
            "Fn::GetAtt": ["StreamFailureQueue", "QueueName"]
        }
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
    for copied in (settings.table_name, "arn:aws:", "123456789012"):
        assert copied not in text


def _literals(document: Any) -> list[str]:
    text = json.dumps(document)
    return REGION_LITERAL.findall(text) + ACCOUNT_LITERAL.findall(text)


def test_region_pattern_finds_region_and_account_literals() -> None:
    # The check below must be able to fail.
    arn = "arn:aws:sqs:eu-west-1:210987654321:q"
    assert _literals({"a": arn, "b": "us-gov-west-1"}) == [
        "eu-west-1",
        "us-gov-west-1",
        "210987654321",
    ]
    assert (
        _literals({"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:q"}) == []
    )


def test_merge_and_packaged_templates_name_no_region_or_account(
    template: Mapping[str, Any], expanded: Mapping[str, Any]
) -> None:
    merge = json.loads((CHALICE_DIR / render_template.MERGE_TEMPLATE).read_text())
    assert _literals(merge) == []
    assert _literals(template) == []
    # The SAM transform's output too: every ARN is built from pseudo-parameters.
    assert _literals(expanded) == []


def test_packaged_template_is_the_same_whatever_region_chalice_ran_in(
    package_dir: Path, tmp_path: Path
) -> None:
    """Chalice needs a region only to run; ``make package`` in eu-west-1 (or with none,
    package_dir) gives the same template, so nothing region-specific is deployed."""
    _package(tmp_path / "eu", region="eu-west-1")
    assert json.loads((tmp_path / "eu" / "sam.json").read_text()) == json.loads(
        (package_dir / "sam.json").read_text()
    )


def test_no_policy_file_or_placeholder_arn_is_committed() -> None:
    """The ``chalice deploy`` policies are written by bootstrap only (git-ignored), and the
    committed config holds no stream ARN for a deployable stage."""
    tracked = subprocess.run(
        ["git", "ls-files", ".chalice"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked and not [path for path in tracked if "policy-" in path]
    config = render_template.read_config(CHALICE_DIR / "config.json")
    for stage in render_template.deployable_stages(config):
        variables = config["stages"][stage].get("environment_variables", {})
        assert "EVENTS_STREAM_ARN" not in variables, stage
        assert _literals(config["stages"][stage]) == [], stage


def _ignored(paths: list[Path]) -> bool:
    """True if git ignores every one of ``paths``."""
    result = subprocess.run(
        ["git", "check-ignore", *map(str, paths)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    return len(result.stdout.split()) == len(paths)


def test_policy_files_are_git_ignored() -> None:
    assert _ignored([CHALICE_DIR / "policy-dev-aggregator.json"])


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
        and resource["Properties"]["FunctionName"] == {"Ref": "Aggregator"}
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
    # An order's declaration re-aggregates the order (issue 14).
    _stream_record("INSERT", table.DECLARATION_RECORD, Status="declared"),
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


def _alarm_of(resources: Mapping[str, Any], name: str, value: Any) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"]["Dimensions"] == [{"Name": name, "Value": value}]
    ]


def _notifies_the_alarm_topic(properties: Mapping[str, Any]) -> bool:
    actions = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    return bool(properties["AlarmActions"] == properties["OKActions"] == actions)


def test_every_queue_raises_an_alarm(resources: Mapping[str, Any]) -> None:
    queues = [name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    assert len(queues) == 6
    for queue in queues:
        (alarm,) = _alarm_of(resources, "QueueName", {"Fn::GetAtt": [queue, "QueueName"]})
        assert alarm["Namespace"] == "AWS/SQS"
        assert _notifies_the_alarm_topic(alarm)
        if queue == "StreamFailureQueue":  # consumed by stream_recovery: alarm when stuck
            assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
        else:  # nothing consumes it: any message is news
            assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
            assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_function_raises_an_alarm_on_errors(
    functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    for name in functions:
        alarms = _alarm_of(resources, "FunctionName", {"Ref": name})
        errors = [alarm for alarm in alarms if alarm["MetricName"] == "Errors"]
        assert len(errors) == 1, name
        assert errors[0]["Namespace"] == "AWS/Lambda"
        assert (errors[0]["ComparisonOperator"], errors[0]["Threshold"]) == (
            "GreaterThanThreshold",
            0,
        )
        assert _notifies_the_alarm_topic(errors[0])


def test_aggregator_iterator_age_raises_an_alarm(resources: Mapping[str, Any]) -> None:
    alarms = _alarm_of(resources, "FunctionName", {"Ref": "Aggregator"})
    (age,) = [alarm for alarm in alarms if alarm["MetricName"] == "IteratorAge"]
    assert age["Namespace"] == "AWS/Lambda" and age["Statistic"] == "Maximum"
    # In milliseconds, and well before the trigger's 1 h MaximumRecordAgeInSeconds.
    assert 0 < age["Threshold"] < 3600 * 1000
    assert _notifies_the_alarm_topic(age)


def test_stream_failure_queue_redrives_to_its_own_dead_letter_queue(
    resources: Mapping[str, Any],
) -> None:
    properties = resources["StreamFailureQueue"]["Properties"]
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": _arn("StreamFailureDeadLetterQueue"),
        "maxReceiveCount": 5,
    }
    assert resources["StreamFailureDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    # Lambda: a queue's visibility timeout must be at least its consumer's timeout.
    assert properties["VisibilityTimeout"] >= resources["StreamRecovery"]["Properties"]["Timeout"]


def test_stream_recovery_consumes_the_failure_queue_with_partial_batch_responses(
    functions: Mapping[str, Any], expanded: Mapping[str, Any]
) -> None:
    events = functions["StreamRecovery"]["Properties"]["Events"]
    assert [event["Type"] for event in events.values()] == ["SQS"]
    mappings = [
        resource["Properties"]
        for resource in expanded["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["FunctionName"] == {"Ref": "StreamRecovery"}
    ]
    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"] == {"Fn::Sub": "${StreamFailureQueue.Arn}"}
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["BatchSize"] == 10


def _rules(expanded: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in expanded["Resources"].items()
        if resource["Type"] == "AWS::Events::Rule" and "EventPattern" in resource["Properties"]
    }


@pytest.mark.parametrize("name", sorted(RULE_TARGETS))
def test_rule_target_has_a_dead_letter_queue_and_a_retry_policy(
    name: str, expanded: Mapping[str, Any]
) -> None:
    # EventBridge: RetryPolicy at most 185 attempts and 86400 s; DeadLetterConfig an SQS ARN.
    rule = _rules(expanded)[name + RULE_TARGETS[name]]
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(name)
    assert target["DeadLetterConfig"] == {"Arn": _arn(f"{name}RuleDeadLetterQueue")}
    assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 185
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400


@pytest.mark.parametrize("name", sorted(RULE_TARGETS))
def test_rule_dead_letter_queue_lets_only_its_rule_send(
    name: str, resources: Mapping[str, Any]
) -> None:
    # EventBridge user guide ("Using dead-letter queues", and "Using resource-based
    # policies", Amazon SQS permissions): the queue's policy allows events.amazonaws.com
    # sqs:SendMessage, conditioned with ArnEquals on aws:SourceArn = the rule's ARN.
    queue = f"{name}RuleDeadLetterQueue"
    policies = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    (policy,) = policies
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == _arn(queue)
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": _arn(name + RULE_TARGETS[name])}
    }


@pytest.mark.parametrize("name", sorted(RULE_TARGETS))
def test_rule_target_sends_failed_asynchronous_invocations_to_a_queue(
    name: str, expanded: Mapping[str, Any]
) -> None:
    configs = [
        r["Properties"]
        for r in expanded["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
        and r["Properties"]["FunctionName"] == {"Ref": name}
    ]
    (config,) = configs
    assert config["Qualifier"] == "$LATEST"  # Chalice publishes no versions
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"] == {
        "OnFailure": {"Destination": _arn(f"{name}AsyncFailureQueue")}
    }
    assert expanded["Resources"][f"{name}AsyncFailureQueue"]["Type"] == "AWS::SQS::Queue"


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
    assert len(set(roles)) == len(functions) == 6
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
    queue = [_arn(EXPECTED_QUEUE[name])] if name in EXPECTED_QUEUE else []
    allowed: dict[str, list[Any]] = {
        "logs": [log_group],
        "dynamodb:Query": [TABLE_ARN, *index],
        "dynamodb:PutItem": [TABLE_ARN],
        "dynamodb:UpdateItem": [TABLE_ARN],
        "dynamodb:DeleteItem": [TABLE_ARN],
        "dynamodb:BatchGetItem": [TABLE_ARN],
        # IAM's service authorization reference gives ListStreams no resource type, so
        # "*" is the only resource that grants it (cfn-lint ships the same data).
        "dynamodb:ListStreams": ["*"],
        "events:PutEvents": [{"Fn::Sub": bus}],
        "sqs:SendMessage": queue,
    }
    for action in STREAM_READ:
        allowed[action] = [STREAM_ARN]
    for action in QUEUE_CONSUMER:
        allowed[action] = queue
    return allowed


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


def test_list_streams_is_the_only_action_on_star(
    functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    for name, function in functions.items():
        on_star = {a for a, r in _grants(_statements(resources, function)) if r == "*"}
        assert on_star == ({"dynamodb:ListStreams"} if name == "Aggregator" else set()), name


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
        wildcards = {"logs", "xray"}  # log group ARNs end in ":*"; X-Ray takes only "*"
        if "*" in [r for _, r in _grants(_statements(resources, function))]:
            wildcards.add("streams")
        assert set(reasons) == wildcards
        assert all(reason.strip() for reason in reasons.values())


# --- operations view: dashboard, archive, tracing (issue 13) ---------------------------


def _dashboard_metrics(resources: Mapping[str, Any]) -> list[list[Any]]:
    body, _ = resources[ops_view.DASHBOARD_ID]["Properties"]["DashboardBody"]["Fn::Sub"]
    return [line for w in json.loads(body)["widgets"] for line in w["properties"]["metrics"]]


def test_dashboard_shows_exactly_the_metrics_the_code_emits(
    resources: Mapping[str, Any],
) -> None:
    lines = _dashboard_metrics(resources)
    app = {line[1] for line in lines if line[0] == DEFAULT_NAMESPACE}
    assert app == set(METRIC_NAMES)
    assert all(line[2:4] == ["service", SERVICE] for line in lines if line[0] == DEFAULT_NAMESPACE)
    latency = [line[-1]["stat"] for line in lines if line[1] == DECISION_LATENCY]
    assert latency == ["p50", "p99"]


def test_dashboard_covers_every_function_and_every_queue(
    functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    lines = _dashboard_metrics(resources)
    names = {f["Properties"]["FunctionName"]["Fn::Sub"] for f in functions.values()}
    for metric in ("Errors", "Throttles", "Duration"):
        shown = {line[3] for line in lines if line[:2] == ["AWS/Lambda", metric]}
        assert shown == names, metric
    assert ["AWS/Lambda", "IteratorAge", "FunctionName", "${AWS::StackName}-aggregator"] in lines
    queues = {r for r, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"}
    depth = {
        line[3] for line in lines if line[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]
    }
    assert depth == {f"${{{q}}}" for q in queues}
    _, names_map = resources[ops_view.DASHBOARD_ID]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert names_map == {q: {"Fn::GetAtt": [q, "QueueName"]} for q in queues}


def test_archive_keeps_the_aggregated_events_for_the_retention_parameter(
    template: Mapping[str, Any], resources: Mapping[str, Any], settings: Settings
) -> None:
    archive = resources[ops_view.ARCHIVE_ID]
    assert archive["Type"] == "AWS::Events::Archive"
    assert archive["Properties"]["EventPattern"] == {
        "source": [settings.event_source],
        "detail-type": [settings.detail_type],
    }
    assert archive["Properties"]["RetentionDays"] == {"Ref": ops_view.ARCHIVE_PARAMETER}
    # EventBridge reads RetentionDays 0 as "for ever": the parameter's 0 removes it instead.
    assert archive["Condition"] == ops_view.HAS_ARCHIVE
    assert template["Conditions"][ops_view.HAS_ARCHIVE] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": ops_view.ARCHIVE_PARAMETER}, 0]}]
    }
    assert template["Parameters"][ops_view.ARCHIVE_PARAMETER]["MinValue"] == 0


def test_tracing_parameter_switches_xray_on_for_every_function(
    template: Mapping[str, Any], functions: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    assert template["Parameters"][ops_view.TRACING_PARAMETER]["AllowedValues"] == [
        "Active",
        "PassThrough",
    ]
    for name, function in functions.items():
        assert function["Properties"]["Tracing"] == {"Ref": ops_view.TRACING_PARAMETER}, name
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = resources[role_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]
        assert conditional == [ops_view.tracing_statement()["Fn::If"]], name


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
    # Pure Python: nothing in it is built for one interpreter or platform.
    assert not [name for name in names if name.endswith((".so", ".pyd"))]
    assert path.stat().st_size < MAX_ZIP_BYTES


def test_functions_run_on_the_packaging_interpreters_runtime(
    functions: Mapping[str, Any],
) -> None:
    runtimes = {name: function["Properties"]["Runtime"] for name, function in functions.items()}
    assert runtimes == dict.fromkeys(functions, INTERPRETER_RUNTIME)
    merge = json.loads((CHALICE_DIR / render_template.MERGE_TEMPLATE).read_text())
    assert "Runtime" not in json.dumps(merge)  # no override of Chalice's choice


def test_chalice_deploy_takes_the_runtime_of_this_interpreter() -> None:
    """``chalice deploy`` (run by scripts.deploy with this interpreter's chalice) creates
    each function with ``Config.lambda_python_version``."""
    from chalice.config import Config

    config = Config.create(chalice_stage=STAGE, project_dir=str(PROJECT_DIR))
    assert config.lambda_python_version == INTERPRETER_RUNTIME


def test_package_copy_leaves_a_bootstrapped_stream_arn_out(tmp_path: Path) -> None:
    """After bootstrap, config.json names the account's stream; ``make package`` must not
    carry it (or the git-ignored real policy files) into the template."""
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(PROJECT_DIR / name, project / name)
    shutil.copytree(PROJECT_DIR / "chalicelib", project / "chalicelib")
    config = render_template.read_config(CHALICE_DIR / "config.json")
    arn = "arn:aws:dynamodb:eu-west-1:210987654321:table/aggregator-events-dev/stream/2026"
    config["stages"][STAGE]["environment_variables"]["EVENTS_STREAM_ARN"] = arn
    (project / ".chalice" / "config.json").write_text(render_template.to_json(config))
    copy = tmp_path / "copy"
    copy.mkdir()
    package.copy_project(project, STAGE, copy)
    copied = render_template.read_config(copy / ".chalice" / "config.json")
    assert _literals(copied["stages"][STAGE]) == []
    for spec in render_template.FUNCTIONS:
        policy = copy / ".chalice" / render_template.policy_file_name(STAGE, spec.name)
        assert json.loads(policy.read_text()) == package.EMPTY_POLICY
