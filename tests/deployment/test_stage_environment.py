"""Only the ``local`` stage points the app at the local runtime's AWS.

The ``local`` stage sets ``AWS_ENDPOINT_URL``, a region and dummy credentials so that
``chalice local --stage local`` talks to ``make run``'s embedded AWS. Nothing a user
deploys may carry them: Lambda sets the region and the role's credentials itself and
reserves those names ("Defined runtime environment variables",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html), and an endpoint
override would send a deployed function's calls to 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest
from chalice.cli.factory import CLIFactory

from tests.helpers import ROOT

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
DEPLOYED_STAGES = sorted(name for name in CONFIG["stages"] if name != "local")


def test_the_local_stage_sets_the_endpoint_region_and_dummy_credentials() -> None:
    env = CONFIG["stages"]["local"]["environment_variables"]
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"]
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "local"


def test_no_aws_setting_is_shared_by_every_stage() -> None:
    assert DEPLOYED_STAGES, "the config has stages that deploy"
    assert not [key for key in CONFIG.get("environment_variables", {}) if key.startswith("AWS_")]


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_deployed_functions_get_no_aws_endpoint_region_or_credentials(stage: str) -> None:
    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=stage)
    functions = {"api_handler", *CONFIG["stages"][stage].get("lambda_functions", {})}
    for function in sorted(functions):
        # What Chalice gives the function: top-level, stage and function variables merged.
        env = config.scope(stage, function).environment_variables
        assert not [key for key in env if key.startswith("AWS_")], (stage, function)
