"""What the HTTP API answers when an AWS call fails: a pure classification.

:func:`classify` turns a botocore exception into the reply and the log fields, so a
misconfigured deployment says what is wrong instead of answering "retry" forever:

* **503, safe to retry**: throttling, a service that is unavailable or answered 5xx, a
  network failure. The SDK has already retried these (standard mode), so the caller may.
  An unreachable *local* endpoint (loopback) names it: the local runtime is not up.
* **500, permanent**: no region, no credentials, access denied, no such table, a request
  AWS refused. Retrying the same request cannot help; the body says what to fix.

The body never carries AWS's message (it can hold account ids and role names); the log
fields do, with the error code, the operation and the HTTP status.

Which codes are which follows DynamoDB's "Error messages and codes" table ("OK to
retry?") in https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
and the throttling/transient codes of the SDKs' standard retry mode
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).

Example::

    failure = classify(err, table="aggregator-events-dev")
    failure.reply   # (500, {"error": "the events table 'aggregator-events-dev' was not found …"})
    failure.log     # {"error": "An error occurred (ResourceNotFoundException) …", …}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

RETRY_MESSAGE = "the event store is unavailable; retry the request"

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionInProgressException",
        "SlowDown",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
ACCESS_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    ProfileNotFound,
)


@dataclass(frozen=True)
class Failure:
    """The answer to one failed AWS call: HTTP status, JSON body, structured log fields."""

    status: int
    body: dict[str, str]
    log: dict[str, Any] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        return self.status == 503

    @property
    def reply(self) -> tuple[int, dict[str, Any]]:
        return self.status, dict(self.body)


def classify(err: BotoCoreError | ClientError, table: str) -> Failure:
    """The reply and log fields for ``err``, raised by a call on the events ``table``."""
    log = _log_fields(err)
    if isinstance(err, ClientError):
        status, message = _client_error(err, table)
    else:
        status, message = _botocore_error(err)
    log["retryable"] = status == 503
    return Failure(status, {"error": message}, log)


def _client_error(err: ClientError, table: str) -> tuple[int, str]:
    code = _code(err)
    if code in THROTTLING_CODES or code in TRANSIENT_CODES or _http_status(err) >= 500:
        return 503, RETRY_MESSAGE
    if code in ACCESS_CODES:
        action = f"dynamodb:{err.operation_name}" if err.operation_name else "this call"
        return 500, (
            f"access denied ({code}): the function's IAM role may not call {action} "
            f"on the events table '{table}'"
        )
    if code in CREDENTIAL_CODES:
        return 500, f"AWS rejected the app's credentials ({code}); check how they are set"
    if code in NOT_FOUND_CODES:
        return 500, (
            f"the events table '{table}' was not found ({code}); check TABLE_NAME and "
            "the AWS region"
        )
    return 500, f"the event store refused the request ({code or 'no error code'})"


def _botocore_error(err: BotoCoreError) -> tuple[int, str]:
    if isinstance(err, BotoConnectionError | HTTPClientError):
        endpoint = _endpoint(err)
        if endpoint and urlsplit(endpoint).hostname in LOOPBACK_HOSTS:
            return 503, (
                f"the local AWS endpoint at {endpoint} is not reachable; start it with `make run`"
            )
        return 503, RETRY_MESSAGE
    if isinstance(err, NoRegionError):
        return 500, (
            "no AWS region is configured; set AWS_REGION or AWS_DEFAULT_REGION "
            "(locally, `chalice local --stage local` sets it)"
        )
    if isinstance(err, CREDENTIAL_ERRORS):
        return 500, f"no usable AWS credentials: {err}"
    return 500, f"the app's AWS client is misconfigured ({type(err).__name__})"


def _log_fields(err: BotoCoreError | ClientError) -> dict[str, Any]:
    fields: dict[str, Any] = {"error": str(err), "error_type": type(err).__name__}
    if isinstance(err, ClientError):
        fields["error_code"] = _code(err)
        fields["operation"] = err.operation_name
        fields["http_status"] = _http_status(err)
    else:
        endpoint = _endpoint(err)
        if endpoint:
            fields["endpoint"] = endpoint
    return fields


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _http_status(err: ClientError) -> int:
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status if isinstance(status, int) else 0


def _endpoint(err: BotoCoreError) -> str:
    """``scheme://host[:port]`` of the URL the failed request went to, if it says."""
    url = getattr(err, "kwargs", {}).get("endpoint_url")
    if not isinstance(url, str) or not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url
