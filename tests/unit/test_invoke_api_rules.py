"""The Invoke API's pure parts: which names reach which function, Lambda's error object,
and what a start-up line says the runtime does not run.

From API_Invoke: ``FunctionName`` may be the name, the full ARN or the partial ARN, with
a version or alias appended; python-exceptions: the error object's fields.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice

from local.invoke_api import FunctionNames, error_payload
from local.lambdas import Clock, Functions, Outcome
from local.support import unsupported, unsupported_line
from local.template import FunctionSettings

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def _names() -> FunctionNames:
    settings = {n: FunctionSettings(n) for n in ("hello", "api_handler")}
    functions = Functions({}, settings, Clock(), "123456789012", "us-east-1", "shop-dev")
    return FunctionNames(functions, "us-east-1", "123456789012")


def test_a_function_is_found_by_chalice_name_deployed_name_and_arns() -> None:
    names = _names()
    for given in (
        "hello",
        "shop-dev-hello",
        "shop-dev-hello:$LATEST",
        "123456789012:function:shop-dev-hello",
        f"{ARN}shop-dev-hello",
        f"{ARN}shop-dev-hello:$LATEST",
    ):
        assert names.resolve(given, None) == (
            "hello",
            f"{ARN}shop-dev-hello" + (":$LATEST" if given.endswith("$LATEST") else ""),
        ), given


def test_the_rest_apis_function_is_named_after_app_and_stage() -> None:
    assert _names().resolve("shop-dev", None)[0] == "api_handler"


def test_an_unknown_function_or_version_is_not_found_with_the_arn_meant() -> None:
    names = _names()
    assert names.resolve("nobody", None) == (None, f"{ARN}nobody")
    assert names.resolve("shop-dev-hello", "3") == (None, f"{ARN}shop-dev-hello:3")


def test_lambdas_error_object_for_an_exception_a_timeout_and_an_init_error() -> None:
    raised = error_payload(Outcome("r1", error="ValueError: bad: input", trace=("  File x",)))
    assert raised == {
        "errorMessage": "bad: input",
        "errorType": "ValueError",
        "requestId": "r1",
        "stackTrace": ["  File x"],
    }
    late = error_payload(Outcome("r2", error="Task timed out after 3.00 seconds", timed_out=True))
    assert late["errorType"] == "Sandbox.Timedout"
    assert late["errorMessage"] == "RequestId: r2 Error: Task timed out after 3.00 seconds"
    init = error_payload(Outcome("r3", error="Runtime.ImportModuleError: m", init_error=True))
    assert (init["errorType"], init["requestId"]) == ("Runtime.ImportModuleError", "")


def test_triggers_the_runtime_does_not_feed_are_named() -> None:
    app = Chalice(app_name="t")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.on_ws_message()
    def message(event: Any) -> None: ...

    @app.on_cw_event({"source": ["x"]})
    def ruled(event: Any) -> None: ...

    @app.lambda_function()
    def plain(event: Any, context: Any) -> None: ...

    assert unsupported(app) == [("on_ws_message", "message")]
    assert unsupported_line(app) == (
        "not run by this runtime (their triggers never fire): on_ws_message (message)"
    )
    assert unsupported_line(Chalice(app_name="empty")) is None
