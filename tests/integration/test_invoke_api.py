"""Lambda's Invoke API on the local runtime: a real ``python -m local run`` process.

The sample app ``apps/functions`` has ``@app.lambda_function`` functions, its own
``chalicelib`` and per-function environment variables; ``apps/broken`` has a function
that fails at import and one that reads a variable nobody set. The rules, from the AWS
documentation:

* API_Invoke: ``RequestResponse`` answers 200 with the function's response,
  ``X-Amz-Executed-Version``; a function error answers 200 with ``X-Amz-Function-Error:
  Unhandled`` and the error object (python-exceptions: ``errorMessage``, ``errorType``,
  ``requestId``, ``stackTrace``); ``Event`` answers 202; ``DryRun`` 204; ``LogType=Tail``
  gives the last 4 KB of the log base64-encoded in ``X-Amz-Log-Result``; an unknown
  function is ``ResourceNotFoundException`` (404); a payload that is not JSON is
  ``InvalidRequestContentException`` (400);
* invocation-async-error-handling: an asynchronous invocation that fails is retried
  ``MaximumRetryAttempts`` times, then invocation-async-retain-records: the on-failure
  destination gets the invocation record.

The runtime is started from this project's directory (whose ``chalicelib`` has no
``greetings``), so the app's own ``chalicelib`` must be the one its handlers import.
The clock runs 10 times faster (``--time-scale 10``): the one-minute wait before an
asynchronous retry takes six seconds.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.test_local_runtime import ROOT, RuntimeProcess

APPS = Path(__file__).parent / "apps"
REGION = "us-east-1"
ACCOUNT = "123456789012"
HELLO = "plain-functions-local-hello"
SESSION = boto3.session.Session(
    region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local"
)
# No client-side retries and a long read timeout: one request, one invocation.
ONCE = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)


class Runtime:
    def __init__(self, app: str, *args: str) -> None:
        self.proc = RuntimeProcess("--project-dir", str(APPS / app), *args)
        found = self.proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)", 90)
        self.aws = found.group(2)
        self.lambda_url = self.proc.wait_for(r"Lambda Invoke API at (http://[\d.]+:\d+)").group(1)
        self.client = SESSION.client("lambda", endpoint_url=self.lambda_url, config=ONCE)

    def invoke(self, name: str, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
        body = json.dumps(payload).encode() if payload is not None else b""
        answer: dict[str, Any] = self.client.invoke(FunctionName=name, Payload=body, **kwargs)
        answer["body"] = answer["Payload"].read()
        return answer


def _until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def functions() -> Iterator[Runtime]:
    runtime = Runtime("functions", "--time-scale", "10")
    try:
        yield runtime
    finally:
        assert runtime.proc.stop() == 0


@pytest.fixture(scope="module")
def broken() -> Iterator[Runtime]:
    runtime = Runtime("broken")
    try:
        yield runtime
    finally:
        assert runtime.proc.stop() == 0


def test_request_response_answers_the_functions_response_with_its_own_environment(
    functions: Runtime,
) -> None:
    answer = functions.invoke(HELLO, {"name": "Ada"})
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in answer
    body = json.loads(answer["body"])
    # chalicelib.greetings is the app's own; GREETING and PUNCTUATION are hello's own
    # lambda_functions variables over the stage's GREETING.
    assert body["message"] == "Bonjour, Ada!"
    assert body["context"]["function_name"] == HELLO
    assert body["context"]["arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{HELLO}"
    assert body["context"]["memory"] == 256
    assert 0 < body["context"]["remaining_ms"] <= 300_000


def test_a_function_is_found_by_its_chalice_name_and_its_full_and_partial_arn(
    functions: Runtime,
) -> None:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:plain-functions-local-echo"
    for name in ("echo", arn, f"{ACCOUNT}:function:plain-functions-local-echo", f"{arn}:$LATEST"):
        answer = functions.invoke(name, ["any", "json", 1])
        assert json.loads(answer["body"]) == ["any", "json", 1], name


def test_log_type_tail_answers_the_invocations_log(functions: Runtime) -> None:
    answer = functions.invoke(HELLO, {"name": "Grace"}, LogType="Tail")
    log = base64.b64decode(answer["LogResult"]).decode()
    request = json.loads(answer["body"])["context"]["request"]
    assert log.startswith(f"START RequestId: {request} Version: $LATEST\n")
    assert "saying hello to Grace\n" in log
    assert f"END RequestId: {request}\n" in log
    assert f"REPORT RequestId: {request}" in log
    assert len(base64.b64decode(answer["LogResult"])) <= 4096


def test_a_handler_error_answers_function_error_unhandled_with_lambdas_error_object(
    functions: Runtime,
) -> None:
    answer = functions.invoke("plain-functions-local-refuse", {"order": 7})
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["body"])
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "cannot take order 7"
    assert error["requestId"] in "\n".join(functions.proc.lines)
    assert any("app.py" in frame and "in refuse" in frame for frame in error["stackTrace"])
    assert not any("local/workers.py" in frame for frame in error["stackTrace"])


def test_a_handler_past_its_timeout_is_a_function_error(functions: Runtime) -> None:
    answer = functions.invoke("nap", {"seconds": 60})
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["body"])
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in error["errorMessage"]


def test_an_event_invocation_is_accepted_then_retried_then_sent_to_its_destination(
    functions: Runtime,
) -> None:
    answer = functions.invoke("plain-functions-local-refuse", {"order": 8}, InvocationType="Event")
    assert answer["StatusCode"] == 202
    assert answer["body"] == b""
    sqs = SESSION.client("sqs", endpoint_url=functions.aws)
    url = sqs.get_queue_url(QueueName="plain-functions-refused")["QueueUrl"]
    record: dict[str, Any] = {}

    def arrived() -> bool:
        page = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        for message in page.get("Messages", []):
            body = json.loads(message["Body"])
            if body["requestPayload"] == {"order": 8}:
                record.update(body)
        return bool(record)

    _until(arrived, 90)
    # MaximumRetryAttempts 1 (the merge template): the attempt and one retry.
    assert functions.proc.count(r'REFUSED \{"order": 8\}') == 2
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:plain-functions-local-refuse:$LATEST"
    )
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "cannot take order 8"


def test_dry_run_invokes_nothing_and_a_payload_that_is_not_json_is_refused(
    functions: Runtime,
) -> None:
    before = functions.proc.count(r"saying hello to")
    assert functions.invoke(HELLO, {"name": "dry"}, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(ClientError) as refused:
        functions.client.invoke(FunctionName=HELLO, Payload=b"{not json")
    assert refused.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert functions.proc.count(r"saying hello to") == before


def test_an_unknown_function_is_resource_not_found(functions: Runtime) -> None:
    with pytest.raises(ClientError) as missing:
        functions.invoke("plain-functions-local-nobody", {})
    error = missing.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
        "plain-functions-local-nobody"
    )


def test_a_function_invokes_another_with_its_own_lambda_client(functions: Runtime) -> None:
    answer = functions.invoke("relay", {"name": "Linus"})
    assert "FunctionError" not in answer, answer["body"]
    assert json.loads(answer["body"])["message"] == "Bonjour, Linus!"


def test_the_rest_apis_function_answers_an_api_gateway_proxy_event(functions: Runtime) -> None:
    # The REST API's function is named <app>-<stage> (Chalice's deployer) and takes API
    # Gateway's proxy event (set-up-lambda-proxy-integrations: input format).
    event = {
        "resource": "/greetings/{name}",
        "path": "/greetings/Ada",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"name": "Ada"},
        "stageVariables": None,
        "requestContext": {"resourcePath": "/greetings/{name}", "httpMethod": "GET"},
        "body": None,
        "isBase64Encoded": False,
    }
    answer = functions.invoke("plain-functions-local", event)
    assert "FunctionError" not in answer, answer["body"]
    response = json.loads(answer["body"])
    assert response["statusCode"] == 200
    # The API handler has the stage's environment only (GREETING is hello's own there).
    assert json.loads(response["body"]) == {"message": "Hello, Ada."}


def test_list_functions_names_every_function_as_deployed(functions: Runtime) -> None:
    names = {f["FunctionName"] for f in functions.client.list_functions()["Functions"]}
    assert names == {"plain-functions-local"} | {
        f"plain-functions-local-{name}" for name in ("echo", "hello", "nap", "refuse", "relay")
    }


def _aws_cli() -> str | None:
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


@pytest.mark.skipif(_aws_cli() is None, reason="the aws CLI is not installed")
def test_the_aws_cli_invokes_a_function(functions: Runtime, tmp_path: Path) -> None:
    out, payload = tmp_path / "out.json", tmp_path / "in.json"
    payload.write_text('{"name": "CLI"}')  # fileb:// reads raw bytes in CLI v1 and v2
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    done = subprocess.run(
        [
            str(_aws_cli()),
            "lambda",
            "invoke",
            "--endpoint-url",
            functions.lambda_url,
            "--function-name",
            HELLO,
            "--payload",
            f"fileb://{payload}",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text())["message"] == "Bonjour, CLI!"


def test_triggers_the_runtime_does_not_run_are_named_in_one_start_up_line(
    functions: Runtime,
) -> None:
    assert functions.proc.count(r"not run by this runtime") == 1
    functions.proc.wait_for(r"not run by this runtime \(their triggers never fire\): ")
    functions.proc.wait_for(r"not run by this runtime .*on_ws_message \(message\)")


def test_hop_lines_are_generic_for_an_app_without_a_plug_in(functions: Runtime) -> None:
    functions.invoke(HELLO, {"name": "generic"})
    functions.proc.wait_for(r"\[lambda\] hello \(1 record\) → ok: \{'message': 'Bonjour, generic!'")
    assert not any("[order" in line for line in functions.proc.lines)
    assert functions.proc.count(r"plug-in ") == 0


def test_a_function_that_fails_at_import_is_named_in_one_line_and_the_rest_still_serve(
    broken: Runtime,
) -> None:
    answer = broken.invoke("report", {"title": "monthly"})
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["body"])
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'app': No module named 'pdf_toolkit_not_installed'"
    )
    broken.proc.wait_for(
        r"function report failed to load: Runtime\.ImportModuleError: Unable to import module "
        r"'app': No module named 'pdf_toolkit_not_installed' \(chalicelib/render_pdf\.py, line \d+\)"
    )
    broken.invoke("report", {"title": "again"})
    assert broken.proc.count(r"function report failed to load") == 1  # said once
    ping = broken.invoke("ping", {})
    assert json.loads(ping["body"]) == "pong"


def test_a_handler_that_reads_an_unset_variable_is_named_with_the_variable(
    broken: Runtime,
) -> None:
    answer = broken.invoke("greet", {"name": "Ada"})
    error = json.loads(answer["body"])
    assert error["errorType"] == "TypeError"
    assert error["errorMessage"] == "expected string or bytes-like object, got 'NoneType'"
    line = broken.proc.wait_for(r"\[lambda\] greet \(1 record\) → failed: .*").group(0)
    assert "(app.py, line " in line
    assert "[environment variable(s) not set: GREETING_TEMPLATE]" in line


def test_the_runtime_started_from_this_project_imports_none_of_it_before_the_app() -> None:
    # RuntimeProcess runs from this project's root, where `chalicelib` is this project's.
    assert (ROOT / "chalicelib").is_dir() and not (ROOT / "chalicelib" / "greetings.py").exists()
    code = (
        "import sys, runpy; sys.argv = ['local', '--help'];\n"
        "try:\n    runpy.run_module('local', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('chalicelib', 'app', 'ops', 'local_plugin')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_an_app_that_does_not_import_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        '{"version": "2.0", "app_name": "typo", "stages": {"local": {}}}'
    )
    (tmp_path / "app.py").write_text("from chalice.app import Chalice\napp = Chalice(app_name=\n")
    proc = RuntimeProcess("--project-dir", str(tmp_path))
    assert proc.process.wait(timeout=90) == 2
    line = proc.wait_for(r"local runtime did not start: .*").group(0)
    assert line.startswith(
        f"local runtime did not start: the app in {tmp_path} did not load: "
        "Runtime.UserCodeSyntaxError: Syntax error in module 'app': "
    )
    assert line.endswith("(app.py, line 2)")
    assert not any("Traceback" in seen for seen in proc.lines)
