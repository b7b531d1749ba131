"""The environment the benchmarks run the app in: dummy credentials, bench tables.

:func:`configure` must run before anything imports ``app`` or reads the settings (the app
reads its environment once, at import).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
PROJECT_TABLE = "bench-aggregator-events"
REFERENCE_TABLE = "bench-reference-events"

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # Chalice's test client applies the stage's variables on each call, and the `local`
    # stage points AWS_ENDPOINT_URL at the local runtime; moto is the only AWS here.
    # https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
    "TABLE_NAME": PROJECT_TABLE,
    "EVENTS_STREAM_ARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PROJECT_TABLE}/stream/bench",
    "API_AUTH": "none",
    "POWERTOOLS_METRICS_NAMESPACE": "EventAggregatorBench",
}


def configure() -> None:
    """Point this process at moto-only, dummy settings (never at a real account)."""
    os.environ.update(ENV)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)


def subprocess_env() -> dict[str, str]:
    """The environment of a fresh interpreter that imports ``app`` (cold start)."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_PROFILE")}
    env.update(ENV)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
