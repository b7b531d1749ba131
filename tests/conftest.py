"""Shared fixtures: moto in place of AWS, the Chalice app, its test client and pipeline.

Nothing here reaches AWS: dummy credentials are set before anything imports boto3 and
every test runs inside ``moto.mock_aws``.
"""

from __future__ import annotations

import importlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from tests.helpers import REGION, TABLE, TEST_ENV, make_pipeline

os.environ.update(TEST_ENV)
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)

from chalicelib import aws as app_aws
from chalicelib import services, table
from local.pipeline import AwsClients, Pipeline


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    """A fresh moto account with the events table created from its one definition."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("dynamodb").create_table(**table.create_table_request(TABLE))
        services.reset()
        yield AwsClients.from_session(session)
    services.reset()


@pytest.fixture
def load_app(aws: AwsClients) -> Iterator[Callable[..., Any]]:
    """Import ``app.py`` with extra environment variables (it reads them at import)."""
    saved = dict(os.environ)

    def load(**env: str) -> Any:
        os.environ.update(env)
        services.reset()
        import app as app_module

        return importlib.reload(app_module).app

    yield load
    os.environ.clear()
    os.environ.update(saved)
    services.reset()
    import app as app_module

    importlib.reload(app_module)


@pytest.fixture
def chalice_app(load_app: Callable[..., Any]) -> Any:
    return load_app()


@pytest.fixture
def client(chalice_app: Any) -> Iterator[Client]:
    with Client(chalice_app, stage_name="local") as test_client:
        yield test_client


@pytest.fixture
def pipeline(chalice_app: Any, aws: AwsClients) -> Pipeline:
    return make_pipeline(chalice_app, aws)


@pytest.fixture
def aws_calls(aws: AwsClients) -> Counter[str]:
    """Counts every AWS call the app's own clients make, as ``Service.Operation``."""
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    for client in (app_aws.dynamodb(), app_aws.events()):
        client.meta.events.register("before-call.*.*", record)
    return calls
