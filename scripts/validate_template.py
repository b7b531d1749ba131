"""Validate the packaged SAM template offline: cfn-lint on it and on its expansion.

cfn-lint checks the SAM template (CloudFormation resources, intrinsics, and its own SAM
transform). The template is then expanded with aws-sam-translator the way the
``AWS::Serverless-2016-10-31`` transform does it on deploy, which fails on invalid SAM
event properties, and the expansion (the event source mapping, rules and permissions
SAM generates) goes through cfn-lint too. It is written next to the input as
``expanded.json``.

No AWS call is made: the translator gets a fixed region and an empty managed-policy map
(the template names no managed policy), and ``CodeUri`` is pointed at a placeholder S3
object as ``aws cloudformation package`` would.

Usage::

    python -m scripts.validate_template build/package/sam.json

Exit status 1 if either template has an error (cfn-lint ``E`` rules or a failed
expansion); warnings are printed and counted.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

# cfn-lint checks region-specific facts (e.g. runtime availability) for this region; the
# template itself names none (tests/deployment asserts it), so any region would do.
REGION = "us-east-1"
EXPANDED_NAME = "expanded.json"
PLACEHOLDER_CODE = {"Bucket": "offline-validation", "Key": "deployment.zip"}
_LOCAL_CODE = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


@dataclass
class Report:
    """What was found in one template."""

    name: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.errors)} error(s), {len(self.warnings)} warning(s), "
            f"{len(self.notes)} informational"
        )


def lint(path: Path, name: str, region: str = REGION) -> Report:
    """cfn-lint (rules E and W, plus I) on one template file."""
    report = Report(name)
    for match in lint_file(path, ManualArgs(regions=[region], include_checks=["I"])):
        rule_id: str = match.rule.id
        line = f"{rule_id} {match.message} ({path.name}:{match.linenumber})"
        if rule_id.startswith("E"):
            report.errors.append(line)
        elif rule_id.startswith("W"):
            report.warnings.append(line)
        else:
            report.notes.append(line)
    return report


def with_placeholder_code(sam: dict[str, Any]) -> dict[str, Any]:
    """A copy whose local code paths point at a placeholder S3 object."""
    template = copy.deepcopy(sam)
    for resource in template.get("Resources", {}).values():
        key = _LOCAL_CODE.get(resource.get("Type", ""))
        if key and isinstance(resource.get("Properties", {}).get(key), str):
            resource["Properties"][key] = dict(PLACEHOLDER_CODE)
    return template


def expand(sam: dict[str, Any], region: str = REGION) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``sam`` (offline)."""
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    expanded: dict[str, Any] = translator.translate(
        sam_template=with_placeholder_code(sam), parameter_values={}
    )
    return expanded


def validate(sam_path: Path, region: str = REGION) -> list[Report]:
    """Lint the SAM template, expand it, lint the expansion. One report per template."""
    reports = [lint(sam_path, "SAM template", region)]
    expanded_report = Report("expanded template")
    try:
        expanded = expand(json.loads(sam_path.read_text()), region)
    except InvalidDocumentException as err:
        expanded_report.errors.extend(f"SAM transform: {cause.message}" for cause in err.causes)
        return [*reports, expanded_report]
    expanded_path = sam_path.with_name(EXPANDED_NAME)
    expanded_path.write_text(json.dumps(expanded, indent=2) + "\n")
    return [*reports, lint(expanded_path, "expanded template", region)]


def print_reports(reports: Sequence[Report]) -> None:
    for report in reports:
        for line in [*report.errors, *report.warnings, *report.notes]:
            print(f"  {report.name}: {line}")
    for report in reports:
        print(report.summary())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cfn-lint the SAM template and its expansion")
    parser.add_argument("template", type=Path, help="the SAM template, e.g. build/package/sam.json")
    parser.add_argument("--region", default=REGION)
    args = parser.parse_args(argv)
    if not args.template.is_file():
        print(f"validate_template: no such file: {args.template}", file=sys.stderr)
        return 2
    reports = validate(args.template, args.region)
    print_reports(reports)
    return 1 if any(report.errors for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
