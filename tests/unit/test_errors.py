"""``errors.classify``: which failed AWS calls are "retry" (503) and which are permanent (500).

The codes and their "OK to retry?" come from DynamoDB's error table,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
(e.g. ResourceNotFoundException and AccessDeniedException: no; ThrottlingException,
ProvisionedThroughputExceededException, InternalServerError: yes).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ProfileNotFound,
    ReadTimeoutError,
)

from chalicelib.errors import RETRY_MESSAGE, classify

TABLE = "aggregator-events-dev"


def _client_error(code: str, http_status: int = 400, operation: str = "PutItem") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code}: role arn:aws:iam::111122223333:role/x"},
        "ResponseMetadata": {"HTTPStatusCode": http_status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "http_status"),
    [
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
        ("SomethingNew", 502),
    ],
)
def test_throttling_and_unavailable_answer_503_retry(code: str, http_status: int) -> None:
    failure = classify(_client_error(code, http_status), TABLE)
    assert failure.reply == (503, {"error": RETRY_MESSAGE})
    assert failure.retryable
    assert failure.log["error_code"] == code
    assert failure.log["retryable"] is True


def test_access_denied_is_a_permanent_500_naming_the_action_and_table() -> None:
    failure = classify(_client_error("AccessDeniedException", operation="Query"), TABLE)
    status, body = failure.reply
    assert status == 500 and not failure.retryable
    assert "AccessDeniedException" in body["error"]
    assert "dynamodb:Query" in body["error"] and TABLE in body["error"]
    assert "retry" not in body["error"]


def test_missing_table_is_a_permanent_500_naming_the_table() -> None:
    status, body = classify(_client_error("ResourceNotFoundException"), TABLE).reply
    assert status == 500
    assert f"'{TABLE}' was not found" in body["error"]
    assert "TABLE_NAME" in body["error"]


def test_rejected_credentials_are_a_permanent_500() -> None:
    status, body = classify(_client_error("UnrecognizedClientException"), TABLE).reply
    assert status == 500
    assert "credentials" in body["error"] and "UnrecognizedClientException" in body["error"]


def test_other_client_errors_are_500_with_their_code() -> None:
    status, body = classify(_client_error("ValidationException"), TABLE).reply
    assert (status, body["error"]) == (
        500,
        "the event store refused the request (ValidationException)",
    )


def test_body_never_carries_aws_message_but_the_log_does() -> None:
    failure = classify(_client_error("AccessDeniedException"), TABLE)
    assert "111122223333" not in failure.body["error"]
    assert "111122223333" in failure.log["error"]
    assert failure.log["operation"] == "PutItem"
    assert failure.log["http_status"] == 400
    assert failure.log["error_type"] == "ClientError"


def test_unreachable_local_endpoint_answers_503_naming_it_and_make_run() -> None:
    err = EndpointConnectionError(endpoint_url="http://127.0.0.1:8002/")
    failure = classify(err, TABLE)
    assert failure.reply == (
        503,
        {
            "error": "the local AWS endpoint at http://127.0.0.1:8002 is not reachable; "
            "start it with `make run`"
        },
    )
    assert failure.log["endpoint"] == "http://127.0.0.1:8002"
    assert failure.log["error_type"] == "EndpointConnectionError"


@pytest.mark.parametrize(
    "err",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
        ConnectTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
        ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com/"),
    ],
)
def test_network_failures_to_aws_answer_503_retry(err: Exception) -> None:
    failure = classify(err, TABLE)  # type: ignore[arg-type]
    assert failure.reply == (503, {"error": RETRY_MESSAGE})
    assert failure.log["endpoint"] == "https://dynamodb.eu-west-1.amazonaws.com"


def test_no_region_is_a_permanent_500_saying_how_to_set_it() -> None:
    status, body = classify(NoRegionError(), TABLE).reply
    assert status == 500
    assert "no AWS region is configured" in body["error"]
    assert "AWS_REGION" in body["error"]


@pytest.mark.parametrize("err", [NoCredentialsError(), ProfileNotFound(profile="nope")])
def test_missing_credentials_are_a_permanent_500(err: Exception) -> None:
    status, body = classify(err, TABLE).reply  # type: ignore[arg-type]
    assert status == 500
    assert body["error"].startswith("no usable AWS credentials: ")
    assert str(err) in body["error"]


def test_other_botocore_errors_are_500_naming_the_error_type_only() -> None:
    err = ParamValidationError(report="Invalid length for parameter Key, value: secret")
    failure = classify(err, TABLE)
    assert failure.reply == (
        500,
        {"error": "the app's AWS client is misconfigured (ParamValidationError)"},
    )
    assert "secret" in failure.log["error"]


def test_reply_is_a_copy_the_caller_may_change() -> None:
    failure = classify(NoRegionError(), TABLE)
    failure.reply[1]["extra"] = "x"
    assert "extra" not in failure.body
