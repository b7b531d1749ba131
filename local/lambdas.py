"""Invoking a function as Lambda does: a context object, the function's timeout, a clock.

:class:`LambdaContext` has the attributes and the one method of Lambda's Python context
object (python-context: ``function_name``, ``function_version``, ``invoked_function_arn``,
``memory_limit_in_mb``, ``aws_request_id``, ``log_group_name``, ``log_stream_name``,
``identity``, ``client_context``, ``get_remaining_time_in_millis()``).

:class:`Functions` calls a handler of the app with such a context and enforces the
function's timeout: a handler still running when its time is up is an error, as on Lambda
(invocation-async-error-handling: "Function errors include ... timeouts"). In one
interpreter the late handler's thread cannot be stopped, only abandoned.

:class:`Clock` lets time run faster (``--time-scale``): record ages, timeouts, batching
windows and retry back-offs are measured in scaled seconds, so an hour-long limit is
reached in a second at ``time_scale=3600``.

Example::

    functions = Functions(app.handler_map, settings.functions, clock, "123456789012",
                          "us-east-1", prefix="my-app-local")
    outcome = functions.invoke("aggregator", {"Records": [...]})
    outcome.error      # None, or "TimeoutError: Task timed out after 60.00 seconds"
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.template import FunctionSettings

Handler = Callable[[dict[str, Any], Any], Any]


class Clock:
    """Scaled time: ``scale`` seconds pass for each real second."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._start_real = time.time()
        self._start_mono = time.monotonic()

    def monotonic(self) -> float:
        """Scaled seconds since an arbitrary start (for intervals)."""
        return (time.monotonic() - self._start_mono) * self.scale

    def age(self, created_epoch: float) -> float:
        """Scaled seconds since ``created_epoch`` (a real Unix time)."""
        return (time.time() - created_epoch) * self.scale

    def real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of scaled time take."""
        return seconds / self.scale

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        if stop is None:
            time.sleep(self.real(seconds))
        else:
            stop.wait(self.real(seconds))


@dataclass
class LambdaContext:
    """Lambda's context object for Python handlers."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float  # on the clock's monotonic scale
    clock: Clock = field(repr=False)
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.monotonic()) * 1000))


@dataclass(frozen=True)
class Outcome:
    """What one invocation gave: a value, or an error (``function_error``: Unhandled)."""

    request_id: str
    value: Any = None
    error: str | None = None
    timed_out: bool = False
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    # What the handler wrote to stdout/stderr (worker processes only) and its traceback.
    log: str = field(default="", compare=False, repr=False)
    trace: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # Where the error is and which unset variables the app read (local.diagnose).
    hint: str = field(default="", compare=False, repr=False)
    # The function did not load (Lambda's init error: Runtime.ImportModuleError, ...).
    init_error: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None


class Functions:
    """The app's functions, invoked with a context and their timeout."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        settings: Mapping[str, FunctionSettings],
        clock: Clock,
        account: str,
        region: str,
        prefix: str = "local",
    ) -> None:
        self._handlers = handlers
        self._settings = settings
        self.clock = clock
        self._account = account
        self._region = region
        self._prefix = prefix

    def settings(self, name: str) -> FunctionSettings:
        return self._settings.get(name) or FunctionSettings(name)

    def deployed_name(self, name: str) -> str:
        """The function's name as ``chalice deploy`` names it: ``<app>-<stage>-<name>``;
        the REST API's function is ``<app>-<stage>``."""
        return self._prefix if name == "api_handler" else f"{self._prefix}-{name}"

    @property
    def names(self) -> list[str]:
        """The app's functions by their Chalice names."""
        return sorted(self._settings)

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self._region}:{self._account}:function:{self.deployed_name(name)}"

    def rule_arn(self, name: str) -> str:
        """The ARN of the function's EventBridge rule, named as ``chalice deploy`` names it."""
        return f"arn:aws:events:{self._region}:{self._account}:rule/{self.deployed_name(name)}"

    def context(self, name: str, request_id: str) -> LambdaContext:
        settings = self.settings(name)
        deployed = self.deployed_name(name)
        return LambdaContext(
            function_name=deployed,
            invoked_function_arn=self.arn(name),
            memory_limit_in_mb=settings.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{deployed}",
            log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            deadline=self.clock.monotonic() + settings.timeout_seconds,
            clock=self.clock,
        )

    def close(self) -> None:
        """Nothing to stop: the handlers run in this interpreter."""

    def invoke(self, name: str, event: dict[str, Any]) -> Outcome:
        """Run the handler; an exception or a run past the timeout is a function error."""
        request_id = str(uuid.uuid4())
        context = self.context(name, request_id)
        timeout = self.settings(name).timeout_seconds
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = self._handlers[name](event, context)
            except BaseException as err:  # noqa: BLE001 - a handler's crash is data here
                box["error"] = f"{type(err).__name__}: {err}"
                box["exception"] = err

        # The handler runs in the caller's context (contextvars: logging keys, metrics).
        worker = threading.Thread(
            target=contextvars.copy_context().run, args=(run,), name=f"lambda-{name}", daemon=True
        )
        worker.start()
        worker.join(self.clock.real(timeout))
        if worker.is_alive():
            return Outcome(
                request_id, error=f"Task timed out after {timeout:.2f} seconds", timed_out=True
            )
        if "error" in box:
            return Outcome(request_id, error=box["error"], exception=box["exception"])
        return Outcome(request_id, value=box.get("value"))
