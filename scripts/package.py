"""``chalice package`` for the CloudFormation path, without any account or region in it.

``chalice package`` reads each function's ``iam_policy_file``, but those files exist only
once ``scripts.bootstrap`` has written them for a real account (they are git-ignored),
and the merge template replaces every role's policy anyway. So this script packages a
copy of the project whose ``.chalice`` holds empty policy documents in their place; the
repository's own ``.chalice`` is never written. (The tests check that every role's
policy in the output is the merge template's, so an empty one cannot slip through.)

Chalice needs *some* region to run, to name the Lambda service principal of the
partition. It uses the caller's ``AWS_REGION``/``AWS_DEFAULT_REGION`` when set and
otherwise :data:`PLACEHOLDER_REGION`. The template it writes names no region either way:
every ARN is built from ``${AWS::Partition}``/``${AWS::Region}``/``${AWS::AccountId}``
(``tests/deployment`` checks there is no region or account literal in it).

Usage::

    python -m scripts.package --stage dev build/package
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from chalicelib.config import ConfigurationError
from scripts import render_template as rt

# Any region of the aws partition names the same service principals.
PLACEHOLDER_REGION = "us-west-2"
PROJECT_FILES = ("app.py", "requirements.txt")
PROJECT_DIRS = ("chalicelib",)
EMPTY_POLICY = {"Version": "2012-10-17", "Statement": []}


def package_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with a region for Chalice (the caller's, else the placeholder)."""
    env = dict(environ)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or PLACEHOLDER_REGION
    env["AWS_DEFAULT_REGION"] = region
    return env


def copy_project(project_dir: Path, stage: str, into: Path) -> Path:
    """A copy of what ``chalice package`` reads, with empty policy files for ``stage``."""
    for name in PROJECT_FILES:
        shutil.copy2(project_dir / name, into / name)
    for name in PROJECT_DIRS:
        shutil.copytree(
            project_dir / name, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    chalice_dir = into / ".chalice"
    chalice_dir.mkdir()
    config = rt.read_config(project_dir / ".chalice" / "config.json")
    rt.check_chalice_config(config, stage)
    # The stack sets the stream ARN itself; one that bootstrap wrote for the chalice
    # deploy path names an account and a region, and stays out of the template.
    config["stages"][stage].get("environment_variables", {}).pop("EVENTS_STREAM_ARN", None)
    (chalice_dir / "config.json").write_text(rt.to_json(config))
    for spec in rt.FUNCTIONS:
        (chalice_dir / rt.policy_file_name(stage, spec.name)).write_text(rt.to_json(EMPTY_POLICY))
    return into


def chalice_command(project_dir: Path, stage: str, out: Path) -> list[str]:
    chalice = str(Path(sys.executable).with_name("chalice"))
    merge = project_dir / ".chalice" / rt.MERGE_TEMPLATE
    return [
        chalice,
        "--project-dir",
        str(project_dir),
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(merge),
        str(out),
    ]


def package(
    stage: str,
    out: Path,
    project_dir: Path = rt.PROJECT_DIR,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Write ``sam.json`` and ``deployment.zip`` of ``stage`` into ``out``."""
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="package-") as scratch:
        copy = copy_project(project_dir, stage, Path(scratch))
        shutil.copy2(project_dir / ".chalice" / rt.MERGE_TEMPLATE, copy / ".chalice")
        subprocess.run(
            chalice_command(copy, stage, out),
            env=package_environment(environ),
            capture_output=True,
            check=True,
            timeout=300,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("out", type=Path, help="output folder, e.g. build/package")
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    try:
        package(args.stage, args.out)
    except subprocess.CalledProcessError as err:
        output = (err.stdout or b"") + (err.stderr or b"")
        print(output.decode(errors="replace"), file=sys.stderr)
        print(f"package: chalice package failed ({err.returncode})", file=sys.stderr)
        return 1
    except ConfigurationError as err:
        print(f"package: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"template": str(args.out / "sam.json")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
