"""A misconfigured deployment answers JSON errors that say what is wrong, never a traceback.

Through Chalice's test client against moto. Permanent errors (no region, no table, access
denied) are 500s naming the problem; AWS's "OK to retry?" for them is "no"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import aws as app_aws
from chalicelib.observability import SERVICE
from tests.helpers import LogCollector, post_result

# A stage the config does not define: Chalice's client adds only the top-level variables,
# so the test decides the region and the table.
BARE_STAGE = "unconfigured"


@pytest.fixture
def app_log() -> Iterator[list[logging.LogRecord]]:
    handler = LogCollector()
    target = logging.getLogger(SERVICE)
    target.addHandler(handler)
    yield handler.records
    target.removeHandler(handler)


def test_no_region_answers_500_saying_to_set_one(
    load_app: Callable[..., Any], app_log: list[logging.LogRecord]
) -> None:
    app = load_app(AWS_CONFIG_FILE=os.devnull)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        os.environ.pop(name, None)
    with Client(app, stage_name=BARE_STAGE) as client:
        posted = post_result(client, "7", "In Stock", "passed")
        read = client.http.get("/orders/7")
    for response in (posted, read):
        assert response.status_code == 500
        assert response.headers["Content-Type"] == "application/json"
        assert response.json_body["error"].startswith("no AWS region is configured; set AWS_REGION")
    assert [r.__dict__.get("error_type") for r in app_log if r.levelno == logging.ERROR] == [
        "NoRegionError",
        "NoRegionError",
    ]


def test_missing_table_answers_500_naming_the_table(
    load_app: Callable[..., Any], app_log: list[logging.LogRecord]
) -> None:
    app = load_app(TABLE_NAME="no-such-table")
    with Client(app, stage_name=BARE_STAGE) as client:
        response = post_result(client, "7", "In Stock", "passed")
    assert response.status_code == 500
    assert response.json_body["error"] == (
        "the events table 'no-such-table' was not found (ResourceNotFoundException); "
        "check TABLE_NAME and the AWS region"
    )
    (line,) = [r for r in app_log if r.getMessage() == "could not record a result"]
    assert line.levelno == logging.ERROR
    assert line.__dict__["error_code"] == "ResourceNotFoundException"
    assert line.__dict__["operation"] == "PutItem"


def test_access_denied_answers_500_naming_the_action_not_a_retry(
    client: Client, app_log: list[logging.LogRecord]
) -> None:
    def deny(**_: Any) -> None:
        message = "User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized"
        error = {"Error": {"Code": "AccessDeniedException", "Message": message}}
        raise ClientError(error, "Query")  # type: ignore[arg-type]

    app_aws.dynamodb().meta.events.register("before-call.dynamodb.Query", deny)
    response = client.http.get("/orders/7")
    assert response.status_code == 500
    assert response.json_body["error"] == (
        "access denied (AccessDeniedException): the function's IAM role may not call "
        "dynamodb:Query on the events table 'aggregator-events-test'"
    )
    (line,) = [r for r in app_log if r.getMessage() == "could not read an order"]
    assert "is not authorized" in line.__dict__["error"]
    assert line.__dict__["retryable"] is False
