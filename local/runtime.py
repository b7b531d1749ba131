"""The local runtime: the whole app on one machine, on an embedded AWS stand-in.

``chalice local`` serves only HTTP routes. This runtime also feeds the app's DynamoDB
stream, EventBridge and schedule handlers, so the full pipeline runs without an AWS
account or Docker:

* moto's server in a child process (:mod:`local.motoserver`), reached by users' tools at
  127.0.0.1:8002 (``--aws-port``; or ``--endpoint URL``) through a front door that applies
  PutEvents' limits and answers TestEventPattern, with dummy credentials: the ``local``
  stage points ``chalice local`` at the same port;
* the resources the app declares or names, created by :mod:`local.resources`;
* the HTTP routes, served by Chalice's own local server with the stage's environment;
* a pump thread that runs :class:`local.pipeline.Pipeline` and the schedules;
* Lambda's Invoke API for every function on 127.0.0.1:8004 (:mod:`local.invoke_api`);
* the app's plug-in, if it names one (:mod:`local.plugins`): its wording for hops, its
  demo. Without one every hop line is generic.

Nothing of this project is imported before the app: the app's own ``chalicelib`` is the
one its handlers import.

Example::

    runtime = LocalRuntime(RuntimeOptions(port=DEFAULT_PORT, aws_port=DEFAULT_AWS_PORT))
    runtime.start()      # prints every hop as it happens
    runtime.wait()       # until Ctrl-C, then runtime.stop()
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from local.activity import ActivityLog
from local.diagnose import Failure
from local.embedded_aws import PortInUse
from local.faults import FaultProxy
from local.invoke_api import LambdaApi
from local.lambdas import Clock
from local.pipeline import AwsClients, Pipeline
from local.plugins import Hop, HopPrinter, PluginContext, hook, load_plugin
from local.resources import CreatedResources, ResourceClients, create_resources
from local.sources import attach_sources
from local.streams import LAMBDA_IDLE_POLL_SECONDS
from local.support import unsupported_line
from local.template import ProjectSettings, needed_resources
from local.workers import ProcessFunctions

# `chalice local` serves on 8000; the runtime serves the same routes next to it.
DEFAULT_PORT = 8001
ACCOUNT = "123456789012"
REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # Never read a real profile or credentials file.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass
class RuntimeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    stage: str = "local"
    endpoint: str | None = None
    # Port of the embedded AWS (0 = any free one). `python -m local run` defaults to
    # DEFAULT_AWS_PORT, where the `local` stage points `chalice local`.
    aws_port: int = 0
    project_dir: Path = field(default_factory=lambda: Path.cwd())
    poll_seconds: float = 0.05
    verbose: bool = False
    # Stage environment variables to override, e.g. {"LOG_LEVEL": "DEBUG"}.
    env: dict[str, str] = field(default_factory=dict)
    # Run every schedule this often instead of at its own rate (demos, soak runs).
    schedule_seconds: float | None = None
    # Fraction of the app's AWS calls answered with a ThrottlingException.
    fault_rate: float = 0.0
    fault_seed: int | None = None
    # Concurrent EventBridge → Lambda deliveries (Lambda runs them side by side).
    event_workers: int = 8
    # Stream batches run at once across all lanes (ParallelizationFactor × shards).
    stream_workers: int = 16
    # Virtual shards of each stream; records are spread by partition key.
    stream_shards: int = 1
    # Fraction of stream batches and EventBridge events delivered a second time.
    duplicate_rate: float = 0.0
    # Scaled seconds per real second (record ages, timeouts, windows, back-offs).
    time_scale: float = 1.0
    # "process": each function in its own worker processes with its own environment;
    # "thread": every handler in this interpreter (one environment for all).
    isolation: str = "process"
    # Worker processes (concurrent execution environments) per function.
    max_workers: int = 4
    # Port of the web UI (local.ui); 0 turns it off. `python -m local run`: 8003.
    ui_port: int = 0
    # Port of Lambda's Invoke API (0 = any free one; `python -m local run`: 8004).
    lambda_port: int = 0
    # The app's plug-in module (default: pyproject's [tool.chalice-local] plugin).
    plugin: str | None = None


class Printer:
    """Prints hops, one compact line each, from any thread."""

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._write = write or _write_line
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        with self._lock:
            self._write(f"{stamp} {line}")


class LocalRuntime:
    """Starts and stops everything; see the module docstring."""

    def __init__(self, options: RuntimeOptions, printer: Printer | None = None) -> None:
        self.options = options
        self.say = printer or Printer()
        self.pipeline: Pipeline | None = None
        self.url = ""
        self._moto: Any = None
        self.faults: FaultProxy | None = None
        self._front_door: FaultProxy | None = None
        self._http: Any = None
        self.ui: Any = None
        self.plugin: object | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lambda_api: LambdaApi | None = None
        self.hops = HopPrinter(self.say)
        self.resources = CreatedResources()

    def start(self) -> None:
        """Bring everything up; raises (and cleans up) if anything is wrong."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # `endpoint` is where the runtime and the app talk to AWS; `public` is what users'
        # tools get (chalice local, ops, the AWS CLI): the same moto behind a front door
        # that applies PutEvents' limits and answers TestEventPattern, as AWS does.
        endpoint = self.options.endpoint or self._start_moto()
        public = endpoint if self.options.endpoint else self._start_front_door(endpoint)
        os.environ.update(DUMMY_CREDENTIALS)
        os.environ.pop("AWS_PROFILE", None)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        # The app's calls go through a proxy that applies EventBridge's PutEvents limits
        # (and injects faults when asked); the runtime's own calls go to the endpoint.
        self.faults = FaultProxy(endpoint, self.options.fault_rate, self.options.fault_seed)
        self.faults.start()
        if self.options.fault_rate > 0:
            os.environ["AWS_ENDPOINT_URL"] = self.faults.url
            self.say(f"injecting faults into {self.options.fault_rate:.0%} of the app's calls")
        else:
            os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] = self.faults.url
        self.lambda_api = LambdaApi(
            self._hop, REGION, ACCOUNT, self.options.host, self.options.lambda_port
        )
        # The app's own Lambda client invokes its functions here, as on AWS.
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_api.url
        if not self.options.verbose:
            os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
            os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        import boto3
        from chalice.cli.factory import CLIFactory
        from chalice.local import create_local_server

        factory = CLIFactory(str(self.options.project_dir), environ=os.environ)
        stage_aws = _stage_endpoint(factory, self.options.stage)
        # The app in this process talks to this runtime's AWS, whatever the stage says.
        own_aws = {
            name: os.environ[name]
            for name in (*DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA")
        }
        config = factory.create_config_obj(
            chalice_stage_name=self.options.stage,
            user_provided_params={"environment_variables": {**own_aws, **self.options.env}},
        )
        stage_env = config.environment_variables
        os.environ.update(stage_env)
        clients = AwsClients.from_session(
            boto3.session.Session(region_name=REGION), endpoint_url=endpoint
        )
        app = _load_app(config, self.options.project_dir)
        self._load_plugin(endpoint, dict(stage_env))
        settings = ProjectSettings.load(self.options.project_dir, app, config, dict(stage_env))
        session = boto3.session.Session(region_name=REGION)
        self.resources = _create_resources(
            self.say, session, endpoint, settings, self.options.stage, dict(stage_env)
        )
        for stream in settings.streams.values():
            self.say(f"stream trigger {stream.function}: {stream.as_properties()}")
        clock = Clock(self.options.time_scale)
        prefix = f"{config.app_name}-{self.options.stage}"
        functions = None
        if self.options.isolation == "process":
            functions = ProcessFunctions(
                settings.functions,
                clock,
                ACCOUNT,
                REGION,
                prefix,
                project_dir=self.options.project_dir,
                stage=self.options.stage,
                environ={k: v for k, v in os.environ.items() if k not in stage_env},
                max_workers=self.options.max_workers,
                say=self.say,
            )
        else:
            _say_shared_environment(self.say, settings)
        self.pipeline = Pipeline(
            app,
            clients,
            ACCOUNT,
            REGION,
            functions=functions,
            on_hop=self.hops,
            event_workers=self.options.event_workers,
            settings=settings,
            clock=clock,
            shards=self.options.stream_shards,
            stream_workers=self.options.stream_workers,
            duplicate_rate=self.options.duplicate_rate,
            seed=self.options.fault_seed,
            function_prefix=prefix,
            stream_poll_seconds=LAMBDA_IDLE_POLL_SECONDS,
        )
        attach_sources(
            self.pipeline,
            ResourceClients.from_session(session, endpoint_url=endpoint),
            self.resources,
            settings,
            REGION,
            ACCOUNT,
            on_hop=self.say,
        )
        for rule in self.pipeline.router.rules:
            self.say(f"rule {rule.name}: {rule.pattern}")
        self.faults.on_refused = self.pipeline.activity.refused
        if self._front_door is not None:
            self._front_door.on_refused = self.pipeline.activity.refused
        self.lambda_api.serve(self.pipeline.functions, self.pipeline.invocations.submit)
        names = ", ".join(self.pipeline.functions.deployed_name(n) for n in settings.functions)
        self.say(f"Lambda Invoke API at {self.lambda_api.url}: {names}")
        not_run = unsupported_line(app, settings.triggers.unsupported)
        if not_run:
            self.say(not_run)
        server = create_local_server(app, config, self.options.host, self.options.port)
        server.server.RequestHandlerClass = functools.partial(
            _request_handler(self.say, self.options.verbose, self.pipeline.activity),
            app_object=app,
            config=config,
        )
        self._http = server
        host, port = server.server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._spawn("http", server.server.serve_forever)
        self._spawn("pump", self._pump)
        self.say(f"serving {self.url} (stage {self.options.stage}, AWS at {public})")
        events_url = self.faults.url if self.options.endpoint else public
        self.say(f"EventBridge API with PutEvents limits and TestEventPattern at {events_url}")
        if self.options.ui_port:
            self._start_ui(clients, settings)
        if stage_aws == public:
            self.say(f"`chalice local --stage {self.options.stage}` uses this AWS too")
        elif stage_aws:
            self.say(
                f"note: `chalice local --stage {self.options.stage}` uses {stage_aws}, "
                "not this runtime's AWS (see --aws-port)"
            )

    def _start_ui(self, clients: AwsClients, settings: ProjectSettings) -> None:
        """The web UI (local.ui) on ``ui_port``, with the app's plug-in views."""
        from local.ui import UiServer
        from local.ui.holding import Queues

        assert self.pipeline is not None
        queues = Queues(
            clients.sqs,
            clients.streams,
            settings,
            self.pipeline.functions,
            self.pipeline.invocations.submit,
            REGION,
        )
        try:
            self.ui = UiServer(
                self.pipeline, queues, self.plugin, self.options.host, self.options.ui_port
            )
        except OSError as err:
            raise PortInUse(
                f"the web UI cannot listen on {self.options.host}:{self.options.ui_port}: "
                f"{err.strerror}; pick another with --ui-port (0 turns it off)"
            ) from None
        self.ui.start()
        self.say(f"web UI at {self.ui.url}")

    def _hop(self, hop: str | Hop) -> None:
        self.hops(hop)

    def _load_plugin(self, endpoint: str, environment: dict[str, str]) -> None:
        """The app's plug-in (after the app: it may import the app's own modules)."""
        context = PluginContext(endpoint_url=endpoint, environment=environment, region=REGION)
        self.plugin = load_plugin(self.options.project_dir, context, self.options.plugin)
        if self.plugin is not None:
            self.hops = HopPrinter(self.say, hook(self.plugin, "describe_hop"))
            name = getattr(self.plugin, "__name__", type(self.plugin).__name__)
            hooks = [
                h
                for h in ("describe_hop", "demo", "views", "parked", "redrive")
                if hook(self.plugin, h)
            ]
            self.say(f"plug-in {name}: {', '.join(hooks) or 'no hooks'}")

    @property
    def aws_pid(self) -> int:
        """The embedded AWS's process id (0 with ``--endpoint``): benchmarks read its CPU."""
        return int(self._moto.pid) if self._moto is not None else 0

    def _start_front_door(self, moto_url: str) -> str:
        """The public AWS endpoint on ``aws_port``: a proxy to moto with EventBridge's
        PutEvents limits and TestEventPattern, so every client gets AWS's answers."""
        try:
            self._front_door = FaultProxy(moto_url, 0.0, port=self.options.aws_port)
        except OSError as err:
            raise PortInUse(
                f"the embedded AWS cannot listen on 127.0.0.1:{self.options.aws_port} "
                f"({err.strerror}); is another `make run` up? Stop it, or pick another port "
                "with --aws-port (0 = any free port)"
            ) from None
        self._front_door.start()
        return self._front_door.url

    def _start_moto(self) -> str:
        """moto's server in a child process (:mod:`local.motoserver`) on a free port;
        clients outside the runtime reach it through :meth:`_start_front_door`."""
        self._moto = subprocess.Popen(
            [sys.executable, "-m", "local.motoserver", "--port", "0"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._moto.stdout is not None
        line = self._moto.stdout.readline().strip()
        found = re.match(r"listening on (http://\S+)", line)
        if found is None:
            raise PortInUse(line.removeprefix("error: ") or "the embedded AWS did not start")
        return found.group(1)

    def _spawn(self, name: str, target: Callable[[], Any]) -> None:
        thread = threading.Thread(target=target, name=f"local-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _pump(self) -> None:
        assert self.pipeline is not None
        pipeline = self.pipeline
        every = {s.name: self.options.schedule_seconds or s.seconds for s in pipeline.schedules}
        due = {name: time.monotonic() + seconds for name, seconds in every.items()}
        while not self._stop.is_set():
            try:
                worked = pipeline.pump()
                for schedule in pipeline.schedules:
                    if time.monotonic() >= due[schedule.name]:
                        due[schedule.name] = time.monotonic() + every[schedule.name]
                        pipeline.submit_schedule(schedule)
            except Exception as err:  # noqa: BLE001 - keep pumping; say what broke
                self.say(f"pump error: {type(err).__name__}: {err}")
                worked = False
            if not worked:
                self._stop.wait(self.options.poll_seconds)

    def wait(self) -> None:
        """Block until Ctrl-C or :meth:`stop`."""
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.say("shutting down")

    def stop(self) -> None:
        """Stop every thread and the embedded AWS; print the failure queue."""
        self._stop.set()
        if self.ui is not None:
            self.ui.stop()
            self.ui = None
        if self._http is not None:
            self._http.server.shutdown()
            self._http.server.server_close()
            self._http = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self.lambda_api is not None:
            self.lambda_api.stop()
            self.lambda_api = None
        if self.pipeline is not None:
            self.pipeline.close()
        if self.pipeline is not None and self.pipeline.failures.entries:
            self.say(f"failure queue holds {len(self.pipeline.failures.entries)} record(s)")
        if self.pipeline is not None:
            for line in self.pipeline.invocations.summary():
                self.say(line)
        if self.faults is not None:
            if self.options.fault_rate > 0:
                self.say(
                    f"faults injected: {self.faults.injected}, "
                    f"calls forwarded: {self.faults.forwarded}"
                )
            if self.faults.refused_requests or self.faults.refused_entries:
                self.say(
                    f"PutEvents refused: {self.faults.refused_requests} request(s), "
                    f"{self.faults.refused_entries} entry(ies)"
                )
            self.faults.stop()
            self.faults = None
        if self._front_door is not None:
            self._front_door.stop()
            self._front_door = None
        if self._moto is not None:
            assert self._moto.stdin is not None
            self._moto.stdin.close()  # the server stops when its input closes
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto.kill()
            self._moto = None
        os.environ.pop("AWS_ENDPOINT_URL_EVENTBRIDGE", None)
        os.environ.pop("AWS_ENDPOINT_URL_LAMBDA", None)


def _load_app(config: Any, project_dir: Path) -> Any:
    """The app object; an app that does not import stops start-up with one line."""
    try:
        return config.chalice_app
    except Exception as err:  # noqa: BLE001 - one line naming the cause and where
        failure = Failure.of(err, init=True, root=project_dir)
        hint = f" {failure.hint()}" if failure.hint() else ""
        raise RuntimeError(
            f"the app in {project_dir} did not load: {failure.error}{hint}"
        ) from None


def _stage_endpoint(factory: Any, stage: str) -> str:
    """The AWS endpoint the stage gives ``chalice local`` (AWS_ENDPOINT_URL), if any."""
    endpoint: str = factory.create_config_obj(stage).environment_variables.get(
        "AWS_ENDPOINT_URL", ""
    )
    return endpoint


def _create_resources(
    say: Callable[[str], None],
    session: Any,
    endpoint: str,
    settings: ProjectSettings,
    stage: str,
    stage_env: dict[str, str],
) -> CreatedResources:
    """Every resource the template declares or the app names (:mod:`local.resources`)."""
    environments = {f"stage {stage}": stage_env}
    for function in settings.functions.values():
        own = {k: v for k, v in function.environment.items() if stage_env.get(k) != v}
        if own:
            environments[f"lambda_functions.{function.name}"] = own
    created = create_resources(
        ResourceClients.from_session(session, endpoint_url=endpoint),
        settings,
        needed_resources(settings, environments),
    )
    for name, arn in created.tables.items():
        say(f"table {name} ready" + (f", stream {arn}" if arn else ""))
    for kinds, names in (
        ("queues", created.queues),
        ("topics", created.topics),
        ("buckets", created.buckets),
        ("Kinesis streams", created.kinesis),
    ):
        if names:
            say(f"{kinds} ready: {', '.join(sorted(names))}")
    return created


def _say_shared_environment(say: Callable[[str], None], settings: ProjectSettings) -> None:
    """In one interpreter every handler sees the same environment: say what differs."""
    seen: dict[str, str] = {}
    for function in settings.functions.values():
        for key, value in function.environment.items():
            if seen.setdefault(key, value) != value:
                say(f"note: {key} differs per function; only --isolation process applies it")


def _write_line(line: str) -> None:
    """One write per line, so a handler printing from another thread cannot split it."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _request_handler(
    say: Callable[[str], None], verbose: bool, activity: ActivityLog | None = None
) -> Any:
    """Chalice's request handler, logging through the runtime's printer (no GETs
    unless verbose, so polling clients don't flood the screen) and into the activity
    record (the web UI's Activity panel)."""
    from chalice.local import ChaliceRequestHandler

    class RequestHandler(ChaliceRequestHandler):
        _started = 0.0

        def handle_one_request(self) -> None:
            self._started = time.monotonic()
            super().handle_one_request()

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if activity is not None and isinstance(code, int | HTTPStatus):
                activity.served(self.command, self.path, int(code), self._started)
            if verbose or self.command != "GET":
                say(f"[http] {self.command} {self.path} → {code}")

    return RequestHandler


def main_run(options: RuntimeOptions) -> int:
    runtime = LocalRuntime(options)
    try:
        runtime.start()
    except Exception as err:  # noqa: BLE001 - refuse to start, saying why
        print(f"local runtime did not start: {err}", file=sys.stderr)
        return 2
    runtime.wait()
    runtime.stop()
    return 0


def main_demo(options: RuntimeOptions) -> int:
    """``python -m local demo``: the runtime, then the app plug-in's ``demo(url)``."""
    runtime = LocalRuntime(options)
    try:
        runtime.start()
    except Exception as err:  # noqa: BLE001 - refuse to start, saying why
        print(f"local runtime did not start: {err}", file=sys.stderr)
        return 2
    try:
        demo = hook(runtime.plugin, "demo")
        if demo is None:
            print(
                f"the app in {options.project_dir} has no demo: its plug-in has no "
                "demo(url) hook (see local/plugins.py)",
                file=sys.stderr,
            )
            return 2
        return int(demo(runtime.url))
    finally:
        runtime.stop()
