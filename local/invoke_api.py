"""Lambda's ``Invoke`` API on a local port: every function of the app, as deployed.

``aws lambda invoke --endpoint-url http://127.0.0.1:8004 --function-name NAME out.json``
and ``boto3.client("lambda", endpoint_url=...).invoke(...)`` reach the app's functions
in their own worker processes (:mod:`local.workers`), with a real context object.

What it answers, from the Lambda API reference (API_Invoke, API_ListFunctions):

* ``POST /2015-03-31/functions/{FunctionName}/invocations``. ``FunctionName`` is the
  function's name as Chalice deploys it (``<app>-<stage>-<name>``; the REST API's is
  ``<app>-<stage>``), its full or partial ARN, or, locally only, its Chalice name.
  ``Qualifier`` (or a ``:qualifier`` suffix) may be ``$LATEST``.
* ``X-Amz-Invocation-Type``: ``RequestResponse`` (default; 200 with the function's
  response, or on a function error ``X-Amz-Function-Error: Unhandled`` and Lambda's error
  object ``errorMessage``/``errorType``/``requestId``/``stackTrace``), ``Event`` (202, then
  Lambda's asynchronous retries and destinations, :mod:`local.asyncinvoke`), ``DryRun``
  (204). ``X-Amz-Executed-Version: $LATEST`` on every invocation.
* ``X-Amz-Log-Type: Tail``: ``X-Amz-Log-Result`` is the last 4 KB of the invocation's log,
  base64-encoded (START, what the handler printed, END, REPORT).
* Payload: JSON, at most 6 MB synchronous and 1 MB asynchronous
  (``RequestTooLargeException``, 413); not JSON: ``InvalidRequestContentException``, 400.
* An unknown function or qualifier: ``ResourceNotFoundException``, 404, ``Function not
  found: <arn>``.
* ``GET /2015-03-31/functions/``: ``ListFunctions`` (names, ARNs, timeout, memory).

The app's own Lambda client is pointed here too (``AWS_ENDPOINT_URL_LAMBDA``), so one
function can invoke another as it does on AWS.

Example::

    api = LambdaApi(report=print, region="us-east-1", account="123456789012", port=8004)
    api.serve(functions, submit=invocations.submit)
    boto3.client("lambda", endpoint_url=api.url).invoke(FunctionName="my-app-dev-hello")
    api.stop()
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.embedded_aws import PortInUse
from local.lambdas import Functions, Outcome
from local.pipeline import outcome_hop
from local.plugins import Hop

# The port `python -m local run` serves the Lambda API on by default (`--lambda-port`).
DEFAULT_LAMBDA_PORT = 8004
LATEST = "$LATEST"
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # API_Invoke: 6 MB for synchronous invocations
ASYNC_PAYLOAD_LIMIT = 1024 * 1024  # API_Invoke: 1 MB for asynchronous invocations
LOG_TAIL_BYTES = 4096  # API_Invoke: LogResult, "the last 4 KB of the execution log"
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_LIST_PATH = re.compile(r"^/2015-03-31/functions/?$")

Report = Callable[[str | Hop], None]
Submit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def error_answer(status: int, code: str, message: str) -> Answer:
    """Lambda's error shape: ``x-amzn-ErrorType`` and ``{"Type", "message"}``."""
    body = json.dumps({"Type": "User", "message": message}).encode()
    return Answer(status, body, {"x-amzn-ErrorType": code, "Content-Type": "application/json"})


class FunctionNames:
    """Every name a caller may use for a function → its Chalice name."""

    def __init__(self, functions: Functions, region: str, account: str) -> None:
        self._functions = functions
        self._arn_prefix = f"arn:aws:lambda:{region}:{account}:function:"
        self._by_name: dict[str, str] = {}
        for name in functions.names:
            deployed = functions.deployed_name(name)
            for alias in (name, deployed, f"{account}:function:{deployed}", functions.arn(name)):
                self._by_name.setdefault(alias, name)

    def resolve(self, given: str, qualifier: str | None) -> tuple[str | None, str]:
        """(Chalice name or None, the ARN the caller meant, for the error message)."""
        base, qualifier = self._split(given, qualifier)
        name = self._by_name.get(base)
        if name is None:
            arn = self._arn_prefix + base.rsplit(":", 1)[-1]
            return None, arn + (f":{qualifier}" if qualifier else "")
        arn = self._functions.arn(name) + (f":{qualifier}" if qualifier else "")
        return (name if qualifier in (None, LATEST) else None), arn

    @staticmethod
    def _split(given: str, qualifier: str | None) -> tuple[str, str | None]:
        parts = given.split(":")
        # name:qualifier, account:function:name[:q], arn:aws:lambda:r:a:function:name[:q]
        if given.startswith("arn:") and len(parts) == 8:
            return ":".join(parts[:7]), qualifier or parts[7]
        if not given.startswith("arn:") and len(parts) in (2, 4):
            return ":".join(parts[:-1]), qualifier or parts[-1]
        return given, qualifier


class LambdaApi:
    """The Invoke endpoint (see the module docstring)."""

    def __init__(
        self,
        report: Report,
        region: str,
        account: str,
        host: str = "127.0.0.1",
        port: int = DEFAULT_LAMBDA_PORT,
    ) -> None:
        """Binds the port now (its URL goes into the functions' environment); serves
        once :meth:`serve` is given the functions."""
        self._report = report
        self._region = region
        self._account = account
        try:
            self._server = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as err:
            raise PortInUse(
                f"the Lambda API cannot listen on {host}:{port} ({err.strerror}); pick "
                "another port with --lambda-port (0 = any free port)"
            ) from None
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def serve(self, functions: Functions, submit: Submit) -> None:
        self._functions = functions
        self._submit = submit
        self._names = FunctionNames(functions, self._region, self._account)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-lambda-api", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the operations --------------------------------------------------------------

    def answer(self, method: str, target: str, headers: Any, body: bytes) -> Answer:
        split = urlsplit(target)
        path = split.path
        if method == "GET" and _LIST_PATH.match(path):
            return self._list()
        found = _INVOKE_PATH.match(path)
        if method != "POST" or not found:
            return error_answer(
                400,
                "UnknownOperationException",
                f"the local Lambda endpoint serves Invoke and ListFunctions, not {method} {path}",
            )
        given = parse_qs(split.query).get("Qualifier")
        qualifier = given[0] if given else None
        name, arn = self._names.resolve(unquote(found.group(1)), qualifier)
        if name is None:
            return error_answer(404, "ResourceNotFoundException", f"Function not found: {arn}")
        kind = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if kind not in INVOCATION_TYPES:
            return error_answer(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{kind}' at 'invocationType' failed to "
                f"satisfy constraint: Member must satisfy enum value set: {list(INVOCATION_TYPES)}",
            )
        limit = ASYNC_PAYLOAD_LIMIT if kind == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            return error_answer(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            )
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as err:
            return error_answer(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {err}",
            )
        if kind == "DryRun":
            return Answer(204)
        if kind == "Event":
            self._submit(name, event)
            self._report(Hop(name, "lambda", 1, "queued (Event)", _shown(event)))
            return Answer(202, headers={"X-Amz-Executed-Version": LATEST})
        tail = (headers.get("X-Amz-Log-Type") or "None") == "Tail"
        return self._invoke(name, event, tail)

    def _invoke(self, name: str, event: Any, tail: bool) -> Answer:
        outcome = self._functions.invoke(name, event)  # any JSON value, as Lambda takes
        self._report(outcome_hop(name, "lambda", event, outcome))
        headers = {"X-Amz-Executed-Version": LATEST, "Content-Type": "application/json"}
        headers["x-amzn-RequestId"] = outcome.request_id
        if tail:
            headers["X-Amz-Log-Result"] = self._log_tail(name, outcome)
        if outcome.failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return Answer(200, json.dumps(error_payload(outcome)).encode(), headers)
        try:
            payload = json.dumps(outcome.value).encode()
        except (TypeError, ValueError) as err:
            headers["X-Amz-Function-Error"] = "Unhandled"
            marshal = {
                "errorMessage": f"Unable to marshal response: {err}",
                "errorType": "Runtime.MarshalError",
                "requestId": outcome.request_id,
                "stackTrace": [],
            }
            return Answer(200, json.dumps(marshal).encode(), headers)
        return Answer(200, payload, headers)

    def _log_tail(self, name: str, outcome: Outcome) -> str:
        memory = self._functions.settings(name).memory_mb
        request = outcome.request_id
        log = (
            f"START RequestId: {request} Version: {LATEST}\n{outcome.log}"
            f"END RequestId: {request}\nREPORT RequestId: {request}\t"
            f"Memory Size: {memory} MB\n"
        ).encode()
        return base64.b64encode(log[-LOG_TAIL_BYTES:]).decode()

    def _list(self) -> Answer:
        functions = [
            {
                "FunctionName": self._functions.deployed_name(name),
                "FunctionArn": self._functions.arn(name),
                "Timeout": int(self._functions.settings(name).timeout_seconds),
                "MemorySize": self._functions.settings(name).memory_mb,
                "Version": LATEST,
            }
            for name in self._functions.names
        ]
        body = json.dumps({"Functions": functions}).encode()
        return Answer(200, body, {"Content-Type": "application/json"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    answer = api.answer(self.command, self.path, self.headers, body)
                except Exception as err:  # noqa: BLE001 - a clear answer, never a traceback
                    answer = error_answer(500, "ServiceException", f"{type(err).__name__}: {err}")
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def error_payload(outcome: Outcome) -> dict[str, Any]:
    """Lambda's error object for a function error (python-exceptions; a timeout is
    ``Sandbox.Timedout``)."""
    error = outcome.error or ""
    if outcome.timed_out:
        error_type, message = "Sandbox.Timedout", f"RequestId: {outcome.request_id} Error: {error}"
    else:
        error_type, _, message = error.partition(": ")
        if not message:
            error_type, message = "Error", error
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": "" if outcome.init_error else outcome.request_id,
        "stackTrace": list(outcome.trace),
    }


def _shown(event: Any) -> dict[str, Any]:
    return event if isinstance(event, dict) else {"payload": event}
