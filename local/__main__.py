"""``python -m local run|demo``: the whole pipeline on this machine.

python -m local run [--host 127.0.0.1] [--port 8001] [--aws-port 8002] [--lambda-port 8004]
                    [--stage local] [--endpoint URL] [--plugin MODULE]
python -m local demo [--port 0] [--aws-port 0]
python -m local pattern test --event-pattern FILE_OR_JSON --event FILE_OR_JSON

Web UI: [--ui-port 8003] (0 turns it off)

Delivery: [--stream-shards N] [--duplicate-rate F] [--time-scale X]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local.embedded_aws import DEFAULT_AWS_PORT
from local.invoke_api import DEFAULT_LAMBDA_PORT
from local.runtime import DEFAULT_PORT, RuntimeOptions, main_demo, main_run
from local.ui import DEFAULT_UI_PORT


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, port, aws_port, lambda_port in (
        (
            "run",
            "serve the app and run its event sources until Ctrl-C",
            DEFAULT_PORT,
            DEFAULT_AWS_PORT,
            DEFAULT_LAMBDA_PORT,
        ),
        ("demo", "start the runtime and run the app plug-in's demo", 0, 0, 0),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=port, help="0 picks a free port")
        command.add_argument(
            "--aws-port",
            type=int,
            default=aws_port,
            help="port of the embedded AWS (0 picks a free one); the local stage's "
            f"AWS_ENDPOINT_URL points chalice local at {DEFAULT_AWS_PORT}",
        )
        command.add_argument(
            "--lambda-port",
            type=int,
            default=lambda_port,
            help="port of Lambda's Invoke API for the app's functions (0 picks a free one)",
        )
        command.add_argument(
            "--plugin", help="the app's plug-in module (default: pyproject's tool.chalice-local)"
        )
        command.add_argument("--stage", default="local")
        command.add_argument("--endpoint", help="an AWS-compatible endpoint instead of moto")
        command.add_argument("--project-dir", type=Path, default=Path.cwd())
        command.add_argument("--verbose", action="store_true", help="also print the app's logs")
        command.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a stage environment variable (repeatable)",
        )
        command.add_argument(
            "--schedule-every",
            type=float,
            metavar="SECONDS",
            help="run schedules this often instead of at their rate",
        )
        command.add_argument(
            "--fault-rate",
            type=float,
            default=0.0,
            help="fraction of the app's AWS calls to fail with ThrottlingException",
        )
        command.add_argument(
            "--ui-port",
            type=int,
            default=DEFAULT_UI_PORT if name == "run" else 0,
            help=f"port of the web UI (default {DEFAULT_UI_PORT} for run; 0 turns it off)",
        )
        command.add_argument(
            "--seed", type=int, help="seed the injected faults and duplicate deliveries"
        )
        _add_delivery_options(command)
    _add_pattern_command(commands)
    return parser.parse_args(argv)


def _add_pattern_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``pattern test``: EventBridge's TestEventPattern, answered locally."""
    pattern = commands.add_parser("pattern", help="EventBridge event patterns")
    actions = pattern.add_subparsers(dest="action", required=True)
    test = actions.add_parser(
        "test",
        help='does the event match the pattern? prints {"Result": true|false} or '
        "AWS's error; exit 0 match, 1 no match, 2 error",
    )
    test.add_argument("--event-pattern", required=True, metavar="FILE_OR_JSON")
    test.add_argument("--event", required=True, metavar="FILE_OR_JSON")


def _add_delivery_options(command: argparse.ArgumentParser) -> None:
    """How Lambda and EventBridge deliver: shards, duplicates, the clock."""
    command.add_argument(
        "--stream-shards",
        type=int,
        default=1,
        metavar="N",
        help="spread each stream's records over N shards by partition key",
    )
    command.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="deliver this fraction of stream batches and EventBridge events twice",
    )
    command.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="run the runtime's clock X times faster (record ages, timeouts, back-offs)",
    )
    command.add_argument(
        "--isolation",
        choices=("process", "thread"),
        default="process",
        help="each function in its own worker processes (default), or all in one",
    )
    command.add_argument(
        "--max-workers",
        type=int,
        default=4,
        metavar="N",
        help="worker processes (concurrent executions) per function",
    )


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.command == "pattern":
        from local.patterns import main_test

        return main_test(args.event_pattern, args.event)
    options = RuntimeOptions(
        host=args.host,
        port=args.port,
        aws_port=args.aws_port,
        stage=args.stage,
        endpoint=args.endpoint,
        project_dir=args.project_dir,
        verbose=args.verbose,
        env=dict(item.split("=", 1) for item in args.env),
        schedule_seconds=args.schedule_every,
        fault_rate=args.fault_rate,
        fault_seed=args.seed,
        stream_shards=args.stream_shards,
        duplicate_rate=args.duplicate_rate,
        time_scale=args.time_scale,
        isolation=args.isolation,
        max_workers=args.max_workers,
        ui_port=args.ui_port,
        lambda_port=args.lambda_port,
        plugin=args.plugin,
    )
    if args.command == "demo":
        return main_demo(options)
    return main_run(options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
