"""Which deployment ``python -m ops`` talks to, and the one line it says when AWS fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoRegionError

from ops.connect import from_stack_outputs, resolve, stage_environment
from ops.errors import UNAVAILABLE, USAGE, OpsError, describe_aws_error
from tests.helpers import ROOT


def test_a_stage_merges_top_level_and_stage_variables_as_chalice_does() -> None:
    env = stage_environment(ROOT, "dev")
    assert env["TABLE_NAME"] == "aggregator-events-dev"
    assert env["REQUIRED_CHECKS"] == '["Account Check", "In Stock"]'
    assert "AWS_ENDPOINT_URL" not in env


def test_an_unknown_stage_names_the_stages_there_are() -> None:
    with pytest.raises(OpsError, match=r"unknown stage 'staging'; .* defines dev, local, prod"):
        stage_environment(ROOT, "staging")


def test_a_loopback_endpoint_gets_the_local_stage_and_dummy_credentials() -> None:
    target = resolve(None, "http://127.0.0.1:8002", None, "some-profile", {})
    assert (target.stage, target.region, target.endpoint) == (
        "local",
        "us-east-1",
        "http://127.0.0.1:8002",
    )
    assert target.settings.table_name == "aggregator-events-local"
    assert target.session.get_credentials().access_key == "local"


def test_the_local_stage_alone_points_at_make_runs_endpoint() -> None:
    assert resolve("local", None, None, None, {}).endpoint == "http://127.0.0.1:8002"


def test_failure_queues_come_from_the_settings_the_stage_and_the_command_line(
    tmp_path: Path,
) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["local"]["environment_variables"]["INVOICE_FAILURE_QUEUE"] = "inv-failures"
    # The local stage names its stream failure queue; without it the name is derived
    # from the table's (TABLE_NAME=t below).
    del config["stages"]["local"]["environment_variables"]["STREAM_FAILURE_QUEUE"]
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    target = resolve(None, "http://127.0.0.1:8002", None, None, {"TABLE_NAME": "t"}, tmp_path)
    assert target.failure_queues(["extra", "inv-failures"]) == [
        ("stream-failures", "t-stream-failures"),
        ("stream-failures-dlq", "t-stream-failures-dlq"),
        ("invoice-processing-rule-dlq", "t-invoice-processing-rule-dlq"),
        ("invoice-processing-async-failures", "t-invoice-processing-async-failures"),
        ("problem-handler-rule-dlq", "t-problem-handler-rule-dlq"),
        ("problem-handler-async-failures", "t-problem-handler-async-failures"),
        ("invoice-failure-queue", "inv-failures"),
        ("queue", "extra"),
    ]


def test_a_stacks_outputs_name_its_table_stream_and_queues() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/"
    environment, found = from_stack_outputs(
        [
            {"OutputKey": "EventsTableName", "OutputValue": "stack-EventsTable-1"},
            {"OutputKey": "EventsStreamArn", "OutputValue": "arn:stream"},
            {"OutputKey": "StreamFailureQueueUrl", "OutputValue": url + "stack-Stream-A"},
            {"OutputKey": "StreamFailureDeadLetterQueueUrl", "OutputValue": url + "stack-Dlq-B"},
        ]
    )
    assert environment == {
        "TABLE_NAME": "stack-EventsTable-1",
        "EVENTS_STREAM_ARN": "arn:stream",
        "STREAM_FAILURE_QUEUE": "stack-Stream-A",
    }
    assert found == [
        ("StreamFailureDeadLetterQueue", "stack-Dlq-B"),
        ("StreamFailureQueue", "stack-Stream-A"),
    ]


def test_a_bad_stage_setting_is_a_configuration_error() -> None:
    with pytest.raises(OpsError, match="stage local: PENDING_SHARDS must be a whole number"):
        resolve(None, "http://127.0.0.1:8002", None, None, {"PENDING_SHARDS": "many"})


def _client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "Query")


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (_client_error("ResourceNotFoundException"), USAGE, "Query: resource not found"),
        (_client_error("AccessDeniedException"), USAGE, "access denied for Query"),
        (_client_error("UnrecognizedClientException"), USAGE, "AWS rejected the credentials"),
        (_client_error("ThrottlingException"), UNAVAILABLE, "AWS is unavailable"),
        (_client_error("InternalServerError", 500), UNAVAILABLE, "AWS is unavailable"),
        (NoRegionError(), USAGE, "no AWS region"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:8002/"),
            UNAVAILABLE,
            "the local AWS endpoint http://127.0.0.1:8002 is not reachable",
        ),
    ],
)
def test_aws_failures_are_one_line_with_an_exit_code(
    error: BotoCoreError | ClientError, code: int, text: str
) -> None:
    failure = describe_aws_error(error, "t", "(stage dev, in eu-west-1)")
    assert failure.code == code
    assert text in failure.message and "\n" not in failure.message
