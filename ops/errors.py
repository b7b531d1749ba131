"""What ``python -m ops`` exits with, and the one line it says about a failure.

Exit codes (docs/operating.md): 0 done; 1 not found or nothing to do; 2 usage or
configuration error (wrong stage, no region or credentials, no such table, access
denied); 3 AWS unavailable or unreachable (retry later); 4 some orders could not be
pushed through (see the per-order lines).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.errors import (
    ACCESS_CODES,
    CREDENTIAL_CODES,
    LOOPBACK_HOSTS,
    NOT_FOUND_CODES,
    THROTTLING_CODES,
    TRANSIENT_CODES,
)

OK = 0
NOT_FOUND = 1
USAGE = 2
UNAVAILABLE = 3
INCOMPLETE = 4


class OpsError(Exception):
    """A failure the command line reports as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def is_loopback(endpoint: str | None) -> bool:
    return bool(endpoint) and urlsplit(endpoint or "").hostname in LOOPBACK_HOSTS


def describe_aws_error(err: BotoCoreError | ClientError, table: str, where: str) -> OpsError:
    """One line naming what is wrong with an AWS call; ``where`` names the stage/endpoint."""
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        operation = err.operation_name or "the call"
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if (
            code in THROTTLING_CODES
            or code in TRANSIENT_CODES
            or (isinstance(status, int) and status >= 500)
        ):
            return OpsError(f"AWS is unavailable ({code or status}); retry later", UNAVAILABLE)
        if code in NOT_FOUND_CODES:
            return OpsError(
                f"{operation}: resource not found ({code}) for table '{table}' {where}; "
                "is the stage deployed (or the local runtime up), and the region right?"
            )
        if code in ACCESS_CODES:
            return OpsError(f"access denied for {operation} {where} ({code})")
        if code in CREDENTIAL_CODES:
            return OpsError(f"AWS rejected the credentials ({code}) {where}")
        return OpsError(f"{operation} failed {where}: {code or 'no error code'}")
    if isinstance(err, EndpointConnectionError | BotoConnectionError | HTTPClientError):
        endpoint = str(getattr(err, "kwargs", {}).get("endpoint_url", "") or "")
        if is_loopback(endpoint):
            parts = urlsplit(endpoint)
            return OpsError(
                f"the local AWS endpoint {parts.scheme}://{parts.netloc} is not reachable; "
                "is the local runtime up (`make run`)?",
                UNAVAILABLE,
            )
        return OpsError(f"AWS is not reachable {where}: {err}", UNAVAILABLE)
    if isinstance(err, NoRegionError):
        return OpsError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or pass --region")
    if isinstance(err, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return OpsError(f"no usable AWS credentials {where}: {err}")
    if isinstance(err, ProfileNotFound):
        return OpsError(str(err))
    return OpsError(f"AWS client error {where}: {type(err).__name__}: {err}")
