"""Each function in its own worker processes, imported the way Lambda imports it.

A worker is a fresh interpreter (``spawn``) that gets the function's own environment
(the runtime's AWS settings, the stage's variables and
``lambda_functions.<name>.environment_variables``, as Chalice merges them), loads the app
from the project directory as Chalice does, and then serves invocations of that one
function. A function has up to ``max_workers`` of them (Lambda's concurrent execution
environments); a worker is started when an invocation finds none idle (a cold start,
whose import time does not count against the timeout, as Lambda's init phase does not).

A handler still running at its timeout has its worker killed, as Lambda stops the
execution environment; the invocation is a function error and the next one gets a new
worker.

Example::

    functions = ProcessFunctions(settings.functions, clock, account, region, prefix,
                                 project_dir=Path("."), stage="local", environ=dict(os.environ))
    functions.invoke("aggregator", {"Records": [...]})
    functions.close()
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from local.diagnose import EnvironmentWatch, Failure
from local.lambdas import Clock, Functions, Outcome
from local.template import FunctionSettings

_SPAWN = multiprocessing.get_context("spawn")
READY_TIMEOUT_SECONDS = 120
# Lambda's LogType=Tail returns the last 4 KB of the log; keep a little more than that.
LOG_TAIL_CHARS = 8192


class FunctionLoadError(RuntimeError):
    """The function's worker could not load the app (Lambda's init error)."""

    def __init__(self, function: str, error_type: str, message: str, line: str) -> None:
        super().__init__(line)
        self.function = function
        self.error_type = error_type
        self.message = message


class _Context:
    """Lambda's context object inside a worker (see :class:`local.lambdas.LambdaContext`)."""

    def __init__(self, fields: dict[str, Any], real_seconds_left: float, scale: float) -> None:
        self.__dict__.update(fields)
        self._deadline = time.monotonic() + real_seconds_left
        self._scale = scale

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * self._scale * 1000))


def _serve(
    conn: Connection,
    project_dir: str,
    stage: str,
    function: str,
    environ: dict[str, str],
    own: dict[str, str],
) -> None:
    """The worker's main loop: load the app once, then run one invocation at a time.
    ``own`` is the function's environment as Chalice merges it; Chalice's loader writes
    the stage's variables into the environment, so they are handed to it as overrides.
    A failure is reported with its cause in one line (:mod:`local.diagnose`)."""
    # Whole lines, as Lambda hands each line to CloudWatch Logs: the workers and the
    # runtime share one output, and block-buffered output (a pipe, not a terminal) would
    # cut a line wherever an 8 KB buffer ended and splice another process's in.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    os.environ.clear()
    os.environ.update(environ)
    watch = EnvironmentWatch.install(project_dir)
    try:
        from chalice.cli.factory import CLIFactory

        config = CLIFactory(project_dir, environ=os.environ).create_config_obj(
            chalice_stage_name=stage, user_provided_params={"environment_variables": own}
        )
        app = config.chalice_app
        # The REST API's function is the app object itself (Chalice's handler app.app).
        handler = app if function == "api_handler" else app.handler_map[function]
        os.environ.update(own)
    except BaseException as err:  # noqa: BLE001 - reported to the runtime, which says so
        failure = Failure.of(err, watch, init=True)
        conn.send(("init-error", (failure.error_type, failure.message, failure.line(function))))
        return
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message is None:
            return
        event, fields, real_seconds, scale = message
        watch.reset()
        with _Tee() as log:
            try:
                reply: tuple[str, Any] = (
                    "ok",
                    handler(event, _Context(fields, real_seconds, scale)),
                )
                trace: tuple[str, ...] = ()
                hint = ""
            except BaseException as err:  # noqa: BLE001 - a handler's crash is data here
                failure = Failure.of(err, watch)
                reply, trace, hint = ("error", failure.error), failure.trace, failure.hint()
        conn.send((*reply, {"log": log.text(), "trace": trace, "hint": hint}))


class _Tee:
    """Copies what the handler writes to stdout and stderr (Lambda's ``LogType=Tail``)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._saved: list[Any] = []

    def __enter__(self) -> _Tee:  # noqa: PYI034
        self._saved = [sys.stdout, sys.stderr]
        sys.stdout = _Copy(sys.stdout, self._buffer)
        sys.stderr = _Copy(sys.stderr, self._buffer)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr = self._saved

    def text(self) -> str:
        return self._buffer.getvalue()[-LOG_TAIL_CHARS:]


class _Copy:
    def __init__(self, stream: Any, copy: io.StringIO) -> None:
        self._stream = stream
        self._copy = copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        written: int = self._stream.write(text)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Worker:
    def __init__(
        self,
        project_dir: Path,
        stage: str,
        function: str,
        environ: dict[str, str],
        own: dict[str, str],
    ) -> None:
        self.conn, child = _SPAWN.Pipe()
        self.process = _SPAWN.Process(
            target=_serve,
            args=(child, str(project_dir), stage, function, environ, own),
            name=f"lambda-{function}",
            daemon=True,
        )
        self.process.start()
        child.close()
        if not self.conn.poll(READY_TIMEOUT_SECONDS):
            self.kill()
            raise RuntimeError(f"function {function}: its worker did not start")
        kind, detail = self.conn.recv()
        if kind != "ready":
            self.kill()
            raise FunctionLoadError(function, *detail)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


class ProcessFunctions(Functions):
    """:class:`local.lambdas.Functions`, each function in its own worker processes."""

    def __init__(
        self,
        settings: Mapping[str, FunctionSettings],
        clock: Clock,
        account: str,
        region: str,
        prefix: str,
        project_dir: Path,
        stage: str,
        environ: Mapping[str, str],
        max_workers: int = 4,
        say: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__({}, settings, clock, account, region, prefix)
        self._say = say or (lambda line: None)
        self._reported: dict[str, str] = {}
        self._project_dir = project_dir
        self._stage = stage
        self._environ = dict(environ)
        self._max_workers = max_workers
        self._idle: dict[str, list[_Worker]] = {}
        self._count: dict[str, int] = {}
        self._lock = threading.Condition()
        self._closed = False

    def environment(self, name: str) -> dict[str, str]:
        """The runtime's environment plus the function's own variables."""
        return {**self._environ, **self.settings(name).environment}

    def _checkout(self, name: str) -> _Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise RuntimeError("the runtime is stopping")
                idle = self._idle.setdefault(name, [])
                if idle:
                    return idle.pop()
                if self._count.get(name, 0) < self._max_workers:
                    self._count[name] = self._count.get(name, 0) + 1
                    break
                self._lock.wait()
        try:
            own = dict(self.settings(name).environment)
            return _Worker(self._project_dir, self._stage, name, self.environment(name), own)
        except BaseException:
            self._release(name, None)
            raise

    def _release(self, name: str, worker: _Worker | None) -> None:
        with self._lock:
            if worker is None:
                self._count[name] -= 1
            else:
                self._idle.setdefault(name, []).append(worker)
            self._lock.notify_all()

    def invoke(self, name: str, event: dict[str, Any]) -> Outcome:
        request_id = str(uuid.uuid4())
        try:
            worker = self._checkout(name)
        except FunctionLoadError as err:
            self._report_load_error(err)
            return Outcome(request_id, error=f"{err.error_type}: {err.message}", init_error=True)
        except RuntimeError as err:
            return Outcome(request_id, error=f"Runtime.InitError: {err}", init_error=True)
        context = self.context(name, request_id)
        fields = {
            key: getattr(context, key)
            for key in (
                "function_name",
                "function_version",
                "invoked_function_arn",
                "memory_limit_in_mb",
                "aws_request_id",
                "log_group_name",
                "log_stream_name",
                "identity",
                "client_context",
            )
        }
        timeout = self.settings(name).timeout_seconds
        real = self.clock.real(timeout)
        try:
            worker.conn.send((event, fields, real, self.clock.scale))
            answered = worker.conn.poll(real)
            reply = worker.conn.recv() if answered else None
        except (OSError, EOFError) as err:
            worker.kill()
            self._release(name, None)
            return Outcome(request_id, error=f"Runtime.ExitError: {err}")
        if reply is None:
            worker.kill()
            self._release(name, None)
            return Outcome(
                request_id, error=f"Task timed out after {timeout:.2f} seconds", timed_out=True
            )
        self._release(name, worker)
        kind, value, *extra = reply
        more: dict[str, Any] = extra[0] if extra else {}
        log, trace = str(more.get("log", "")), tuple(more.get("trace", ()))
        if kind == "ok":
            return Outcome(request_id, value=value, log=log)
        hint = str(more.get("hint", ""))
        return Outcome(request_id, error=str(value), log=log, trace=trace, hint=hint)

    def _report_load_error(self, err: FunctionLoadError) -> None:
        """Say each distinct load failure of a function once (each invocation retries)."""
        with self._lock:
            if self._reported.get(err.function) == str(err):
                return
            self._reported[err.function] = str(err)
        self._say(str(err))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for idle in self._idle.values() for w in idle]
            self._idle.clear()
            self._lock.notify_all()
        for worker in workers:
            worker.stop()
