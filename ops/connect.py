"""Which deployment ``python -m ops`` talks to, and its AWS clients.

* ``--stage NAME`` reads the stage's variables from ``.chalice/config.json`` exactly as
  Chalice merges them (top-level ``environment_variables``, then the stage's), and builds
  :class:`chalicelib.config.Settings` from them with :func:`chalicelib.config.load_settings`,
  so the table, shards, checks and queue names are the ones the deployed code uses.
  AWS credentials and region are the user's own (environment, profile, ``--region``).
* ``--stack NAME`` (the CloudFormation path) also reads the stack's outputs: the table,
  its stream and the URL of every failure queue the stack made.
* ``--endpoint URL`` talks to an AWS-compatible endpoint, e.g. the local runtime's
  embedded AWS (``http://127.0.0.1:8002``); the stage defaults to ``local``. An endpoint
  on loopback gets dummy credentials and region ``us-east-1`` unless given, and never
  reads a profile.

The ``local`` stage itself carries ``AWS_ENDPOINT_URL``, so ``--stage local`` alone
reaches ``make run``'s runtime.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config as BotoConfig

from chalicelib.config import ConfigurationError, Settings, load_settings
from ops.errors import OpsError, is_loopback

PROJECT_DIR = Path(__file__).resolve().parents[1]
LOCAL_STAGE = "local"
LOCAL_REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "aws_session_token": "local",
}
# Stage variables whose names end like this name an SQS queue that holds failures.
QUEUE_SUFFIXES = ("_QUEUE", "_DLQ")


@dataclass(frozen=True)
class Target:
    """One deployment: its stage, settings, where its AWS is and the clients to reach it."""

    stage: str
    settings: Settings
    environment: dict[str, str]
    endpoint: str | None
    region: str
    session: Any
    # (source, queue name) of the failure queues a stack's outputs name (``--stack``).
    stack_queues: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        place = f"at {self.endpoint}" if self.endpoint else f"in {self.region}"
        return f"(stage {self.stage}, {place})"

    def client(self, service: str) -> Any:
        config = BotoConfig(
            retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10
        )
        return self.session.client(service, endpoint_url=self.endpoint, config=config)

    def failure_queues(self, extra: list[str]) -> list[tuple[str, str]]:
        """``(source, queue name)`` of every queue the deployment may keep failures in: the
        stream failure queue (``STREAM_FAILURE_QUEUE``), the queues a ``--stack``'s outputs
        name, the names the ``chalice deploy`` path gives the stack's other queues
        (``<table>-<suffix>``, from :data:`scripts.render_template.QUEUES`), stage
        variables ``*_QUEUE``/``*_DLQ``, then ``--queue``. Missing ones are skipped later."""
        found = {self.settings.stream_failure_queue: "stream-failures"}
        for source, name in self.stack_queues:
            found.setdefault(name, source)
        for suffix in deploy_queue_suffixes():
            found.setdefault(f"{self.settings.table_name}-{suffix}", suffix)
        for key, value in sorted(self.environment.items()):
            if key.endswith(QUEUE_SUFFIXES) and value:
                found.setdefault(value, key.lower().replace("_", "-"))
        for name in extra:
            found.setdefault(name, "queue")
        return [(source, name) for name, source in found.items()]


def deploy_queue_suffixes() -> list[str]:
    """The suffixes ``chalice deploy``'s bootstrap names the stack's queues with."""
    from scripts.render_template import QUEUES

    return [queue.suffix for queue in QUEUES]


def from_stack_outputs(
    outputs: list[dict[str, Any]],
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Stage variables and failure queues from a stack's ``Outputs``: ``EventsTableName``,
    ``EventsStreamArn`` and each ``<Queue>Url``."""
    values = {str(o.get("OutputKey")): str(o.get("OutputValue", "")) for o in outputs}
    environment = {}
    if values.get("EventsTableName"):
        environment["TABLE_NAME"] = values["EventsTableName"]
    if values.get("EventsStreamArn"):
        environment["EVENTS_STREAM_ARN"] = values["EventsStreamArn"]
    found = []
    for key, value in sorted(values.items()):
        if key.endswith("QueueUrl") and value:
            name = value.rstrip("/").rsplit("/", 1)[-1]
            found.append((key.removesuffix("Url"), name))
            if key == "StreamFailureQueueUrl":
                environment["STREAM_FAILURE_QUEUE"] = name
    return environment, found


def _stack_outputs(session: Any, endpoint: str | None, stack: str) -> list[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = session.client("cloudformation", endpoint_url=endpoint).describe_stacks(
            StackName=stack
        )["Stacks"]
    except ClientError as err:
        message = err.response.get("Error", {}).get("Message", str(err))
        raise OpsError(f"stack {stack!r}: {message}") from None
    except BotoCoreError as err:
        raise OpsError(f"stack {stack!r}: {err}") from None
    outputs: list[dict[str, Any]] = stacks[0].get("Outputs", []) if stacks else []
    return outputs


def stage_environment(project_dir: Path, stage: str) -> dict[str, str]:
    """The stage's environment variables, merged the way Chalice merges them."""
    from chalice.config import Config

    path = project_dir / ".chalice" / "config.json"
    try:
        config_from_disk = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise OpsError(f"cannot read {path}: {err}") from None
    stages = sorted((config_from_disk.get("stages") or {}).keys())
    if stage not in stages:
        raise OpsError(f"unknown stage {stage!r}; {path} defines {', '.join(stages) or 'none'}")
    merged = Config(chalice_stage=stage, config_from_disk=config_from_disk).environment_variables
    return {str(k): str(v) for k, v in merged.items()}


def resolve(
    stage: str | None,
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    overrides: dict[str, str],
    project_dir: Path = PROJECT_DIR,
    stack: str | None = None,
) -> Target:
    """Build the :class:`Target`; raise :class:`OpsError` naming what is wrong."""
    import boto3
    from botocore.exceptions import BotoCoreError

    if stage is None:
        if endpoint is None:
            raise OpsError(
                "say which deployment: --stage NAME (e.g. dev), or --endpoint URL for a "
                "local runtime"
            )
        stage = LOCAL_STAGE
    environment = {**stage_environment(project_dir, stage), **overrides}
    endpoint = endpoint or environment.get("AWS_ENDPOINT_URL") or None
    local = is_loopback(endpoint)
    kwargs: dict[str, Any] = {
        # botocore reads AWS_DEFAULT_REGION; AWS_REGION (what Lambda and the other SDKs
        # set) is honoured too.
        "region_name": region
        or (environment.get("AWS_REGION") if local else os.environ.get("AWS_REGION")),
        "profile_name": None if local else profile,
    }
    if local:
        kwargs.update(DUMMY_CREDENTIALS)
        kwargs["region_name"] = kwargs["region_name"] or LOCAL_REGION
    try:
        session = boto3.session.Session(**kwargs)
    except BotoCoreError as err:
        raise OpsError(str(err)) from None
    if not session.region_name:
        raise OpsError(
            f"no AWS region for stage {stage}: set AWS_REGION (or AWS_DEFAULT_REGION), "
            "configure one in your profile, or pass --region"
        )
    if session.get_credentials() is None:
        raise OpsError(
            f"no AWS credentials for stage {stage}: configure them (environment, "
            "~/.aws, SSO) or pass --profile"
        )
    stack_queues: list[tuple[str, str]] = []
    if stack is not None:
        from_stack, stack_queues = from_stack_outputs(_stack_outputs(session, endpoint, stack))
        environment = {**environment, **from_stack, **overrides}
    try:
        settings = load_settings(environment)
    except ConfigurationError as err:
        raise OpsError(f"stage {stage}: {err}") from None
    return Target(
        stage, settings, environment, endpoint, session.region_name, session, tuple(stack_queues)
    )
