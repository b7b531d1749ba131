"""Deploy a stage with ``chalice deploy`` in one command: bootstrap, deploy, finish.

::

    python -m scripts.deploy --stage dev [--alarm-topic-arn arn:aws:sns:<region>:<account>:ops]

1. ``scripts.bootstrap`` step 1: table, queues, alarms, stream ARN, policy files.
2. ``chalice deploy --stage dev``, run by the ``chalice`` of this interpreter, so the
   functions get this interpreter's runtime (``python3.13`` in the project's venv).
3. ``scripts.bootstrap --finish``: the stream trigger's failure handling and filter,
   partial batch responses on the recovery trigger, the rule targets' DLQs and retry
   policies, the on-failure destinations.

Step 3 follows step 2 at once, so the window in which a new stream trigger ignores
``batchItemFailures`` lasts seconds instead of until someone remembers ``--finish``;
every later ``chalice deploy`` leaves the trigger's failure handling as it is, and step 3
puts back the rule targets' settings that it resets. When step 2 or 3 fails, this says so
and exits non-zero; run the same command again (every step is idempotent).

The region and credentials come from the standard environment (``AWS_REGION`` or
``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ...); ``--region`` sets ``AWS_REGION`` for all
three steps.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import ClientError

from chalicelib.config import ConfigurationError
from scripts import bootstrap
from scripts import render_template as rt

Runner = Callable[[list[str], Path], int]
# Lambda runtimes this project supports (the interpreter's version is the runtime).
SUPPORTED_RUNTIMES = ("python3.12", "python3.13", "python3.14")


def interpreter_runtime() -> str:
    """The runtime Chalice derives from this interpreter."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def chalice_deploy_command(stage: str) -> list[str]:
    """``chalice deploy`` of this interpreter's environment (its runtime is ours)."""
    return [str(Path(sys.executable).with_name("chalice")), "deploy", "--stage", stage]


def run_command(command: list[str], project_dir: Path) -> int:
    return subprocess.run(command, cwd=project_dir, check=False).returncode


def deploy(
    stage: bootstrap.Stage,
    clients: bootstrap.Clients,
    alarm_topic_arn: str | None = None,
    runner: Runner = run_command,
) -> int:
    """The three steps; 0 when all succeeded."""
    runtime = interpreter_runtime()
    if runtime not in SUPPORTED_RUNTIMES:
        print(
            f"deploy: this Python would deploy {runtime}; run from the project's venv "
            f"(make venv) with one of {', '.join(SUPPORTED_RUNTIMES)}",
            file=sys.stderr,
        )
        return 1
    bootstrap.prepare(stage, clients, alarm_topic_arn)
    command = chalice_deploy_command(stage.name)
    print("$ " + " ".join(command))
    status = runner(command, stage.config_path.parent.parent)
    if status != 0:
        print(
            f"deploy: chalice deploy failed ({status}); fix the cause and run "
            f"python -m scripts.deploy --stage {stage.name} again",
            file=sys.stderr,
        )
        return status
    bootstrap.finish(stage, clients)
    print(f"stage {stage.name}: deployed, failure handling in place")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--config", type=Path, default=rt.CHALICE_DIR / "config.json")
    parser.add_argument("--alarm-topic-arn", help="SNS topic the alarms notify")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION/AWS_DEFAULT_REGION)")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    clients: bootstrap.Clients | None = None,
    runner: Runner = run_command,
) -> int:
    args = parse_args(argv)
    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region
    try:
        stage = bootstrap.load_stage(args.config, args.stage)
        aws = clients or bootstrap.Clients.from_environment()
        return deploy(stage, aws, args.alarm_topic_arn, runner)
    except (bootstrap.BootstrapError, ConfigurationError, ClientError) as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
