"""``python -m ops``: the operator's command line (docs/operating.md).

python -m ops [--stage NAME | --endpoint URL] [--region R] [--profile P] [--json]
              [--env KEY=VALUE] COMMAND ...

  inspect ORDER_ID                     the order's whole story, oldest first
  pending [--due] [--older-than 15m] [--limit N]
                                       undecided orders from the PendingByDeadline index
  dead-letters [--queue NAME]          dead-letter records and failure queues, as order ids
  redrive [--source NAME] [--order ID ...] [--dry-run] [--queue NAME]
                                       push parked (or named) orders through again
  replay ORDER_ID ... [--dry-run]      re-publish orders' aggregated events as they stand

Exit codes: 0 done, 1 not found or nothing to do, 2 usage or configuration error,
3 AWS unavailable (retry), 4 some orders could not be pushed through.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from ops.errors import USAGE, OpsError, describe_aws_error


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _duration(text: str) -> Any:
    from ops.commands import parse_duration

    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="python -m ops",
        description="Operate the event aggregator: inspect, find what is stuck, redrive.",
        epilog="Exit codes: 0 done, 1 not found or nothing to do, 2 usage or configuration "
        "error, 3 AWS unavailable (retry), 4 some orders could not be pushed through.",
    )
    top.add_argument("--stage", help="a stage of .chalice/config.json (dev, prod, local)")
    top.add_argument(
        "--endpoint",
        help="an AWS-compatible endpoint, e.g. the local runtime's http://127.0.0.1:8002",
    )
    top.add_argument(
        "--stack", help="a CloudFormation stack: read the table and queue names from its outputs"
    )
    top.add_argument("--region", help="AWS region (default: your AWS configuration)")
    top.add_argument("--profile", help="AWS profile (default: your AWS configuration)")
    top.add_argument("--project-dir", type=Path, help=argparse.SUPPRESS)
    top.add_argument(
        "--env",
        type=_env,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stage variable (repeatable), as `python -m local run --env`",
    )
    top.add_argument(
        "--json", action="store_true", help="print one JSON document (docs/operating.md)"
    )
    top.add_argument("--verbose", action="store_true", help="also print the app's logs (stderr)")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    inspect = commands.add_parser("inspect", help="an order's whole story, oldest first")
    inspect.add_argument("order_id", metavar="ORDER_ID")

    pending = commands.add_parser("pending", help="undecided orders (the sparse index, no Scan)")
    pending.add_argument("--due", action="store_true", help="only orders past their deadline")
    pending.add_argument(
        "--older-than",
        type=_duration,
        metavar="DURATION",
        help="first seen longer ago than this (90s, 15m, 2h, 1d)",
    )
    pending.add_argument(
        "--limit", type=_positive, default=100, help="at most this many (default 100)"
    )

    dead = commands.add_parser("dead-letters", help="everything parked, resolved to order ids")
    dead.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="NAME",
        help="another failure queue to list (repeatable)",
    )

    redrive = commands.add_parser("redrive", help="push parked (or the named) orders through again")
    redrive.add_argument(
        "--source",
        metavar="NAME",
        help="dead-letters, stream-failures or a queue name (default: all)",
    )
    redrive.add_argument("--order", nargs="+", default=[], metavar="ID", help="only these orders")
    redrive.add_argument(
        "--dry-run", action="store_true", help="say what would happen; write nothing"
    )
    redrive.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="NAME",
        help="another failure queue (repeatable)",
    )

    replay = commands.add_parser(
        "replay", help="re-publish orders' aggregated events as they stand"
    )
    replay.add_argument("order_ids", nargs="+", metavar="ORDER_ID")
    replay.add_argument("--dry-run", action="store_true", help="print the events; publish nothing")
    return top


def _quiet_app_logs(verbose: bool) -> None:
    """chalicelib logs JSON lines to stdout (Lambda's way); here they go to stderr, and only
    warnings unless --verbose, so stdout stays the command's output."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from chalicelib.observability import logger

    logger.setLevel(logging.INFO if verbose else logging.ERROR)
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ops.commands import Operator, Report
    from ops.connect import PROJECT_DIR, resolve

    target = resolve(
        args.stage,
        args.endpoint,
        args.region,
        args.profile,
        dict(args.env),
        args.project_dir or PROJECT_DIR,
        args.stack,
    )
    operator = Operator(target)
    try:
        report: Report
        if args.command == "inspect":
            report = operator.inspect(args.order_id)
        elif args.command == "pending":
            report = operator.pending(args.due, args.older_than, args.limit)
        elif args.command == "dead-letters":
            report = operator.dead_letters(args.queue)
        elif args.command == "redrive":
            report = operator.redrive(args.source, args.order, args.dry_run, args.queue)
        else:
            report = operator.replay(args.order_ids, args.dry_run)
    except (BotoCoreError, ClientError) as err:
        raise describe_aws_error(err, target.settings.table_name, target.where) from None
    if args.json:
        print(json.dumps(report.data, indent=2, ensure_ascii=False))
    else:
        print("\n".join(report.lines))
    return report.code


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    _quiet_app_logs(args.verbose)
    try:
        return run(args)
    except OpsError as err:
        print(f"ops: {err.message}", file=sys.stderr)
        return err.code
    except (BotoCoreError, ClientError) as err:
        print(f"ops: {describe_aws_error(err, '?', '').message}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130
