"""Settings, read once from environment variables.

Every name the app uses at run time comes from here. ``.chalice/config.json`` sets the
variables per stage; Chalice also sets them while it loads ``app.py`` for ``chalice
package``/``deploy``, so the rule patterns registered at deploy time and the code that
runs in Lambda always see the same required checks, source and detail-type.

Example::

    settings = get_settings()
    settings.required_checks  # ('Account Check', 'In Stock')
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.policy import CompletionPolicy, PolicyError, parse_policy

DEFAULT_REQUIRED_CHECKS = ("Account Check", "In Stock")
DEFAULT_TABLE_NAME = "aggregator-events"
DEFAULT_EVENT_SOURCE = "event-aggregator"
DEFAULT_DETAIL_TYPE = "Order Checks Aggregated"
# Keys of the aggregated event's detail that are not check names.
RESERVED_DETAIL_KEYS = frozenset(
    {"OrderID", "status", "failed", "missing", "reasons", "truncated", "groups"}
)
# Chalice's ``on_cw_event`` rules live on the default bus; events put anywhere else would
# match no rule, so no other bus is accepted.
SUPPORTED_EVENT_BUS = "default"
CHECK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


class ConfigurationError(ValueError):
    """A setting is missing or malformed; raised at load time, never at request time."""


@dataclass(frozen=True)
class Settings:
    """The app's configuration. Build it with :func:`load_settings`."""

    table_name: str = DEFAULT_TABLE_NAME
    stream_arn: str = ""
    event_bus_name: str = "default"
    event_source: str = DEFAULT_EVENT_SOURCE
    detail_type: str = DEFAULT_DETAIL_TYPE
    required_checks: tuple[str, ...] = DEFAULT_REQUIRED_CHECKS
    order_timeout_seconds: int = 900
    pending_shards: int = 4
    publish_attempts: int = 4
    publish_backoff_seconds: float = 0.05
    # The aggregator's stream on-failure queue, consumed by ``stream_recovery``.
    stream_failure_queue: str = f"{DEFAULT_TABLE_NAME}-stream-failures"
    # How long a claimed notification is held before another delivery may take it over;
    # longer than the invoice function's timeout (Chalice's default: 60 s).
    notify_lease_seconds: int = 120
    # How long one timeout sweep run works before it stops (its function times out at 60 s).
    sweep_budget_seconds: int = 40
    # "iam": source endpoints need SigV4-signed calls; "none": open (local stage only).
    api_auth: str = "iam"
    # Check names the API accepts and shows that no order waits for unless it declares them.
    optional_checks: tuple[str, ...] = ()
    # An order is never decided before its declaration (PUT /orders/{id}) is stored.
    require_declaration: bool = False
    # COMPLETION_POLICY, validated; ``None``: one "all" group of the required checks.
    completion_policy: CompletionPolicy | None = None

    @property
    def known_checks(self) -> tuple[str, ...]:
        """Every check name a result or a declaration may use."""
        return tuple(dict.fromkeys(self.required_checks + self.optional_checks))

    @functools.cached_property
    def policy(self) -> CompletionPolicy:
        """The completion policy every decision is made by."""
        if self.completion_policy is not None:
            return self.completion_policy
        return CompletionPolicy.default(self.required_checks, self.require_declaration)


def _parse_checks(raw: str, key: str = "REQUIRED_CHECKS") -> tuple[str, ...]:
    """Read a list of check names: a JSON list or a comma-separated list."""
    text = raw.strip()
    try:
        names = json.loads(text) if text.startswith("[") else text.split(",")
    except ValueError as err:
        raise ConfigurationError(f"{key} is not a valid JSON list: {err}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigurationError(f"{key} must be a list of names")
    checks = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not checks:
        raise ConfigurationError(f"{key} names no check")
    for name in checks:
        if not CHECK_NAME_PATTERN.match(name) or name in RESERVED_DETAIL_KEYS:
            raise ConfigurationError(
                f"check name {name!r} must match {CHECK_NAME_PATTERN.pattern} "
                f"and not be one of {sorted(RESERVED_DETAIL_KEYS)}"
            )
    return checks


def _positive_int(environ: Mapping[str, str], key: str, default: int) -> int:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{key} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigurationError(f"{key} must be at least 1, got {value}")
    return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from a mapping such as ``os.environ``."""
    checks = environ.get("REQUIRED_CHECKS")
    table_name = environ.get("TABLE_NAME") or DEFAULT_TABLE_NAME
    required = _parse_checks(checks) if checks else DEFAULT_REQUIRED_CHECKS
    optional = _optional_checks(environ, required)
    require_declaration = _flag(environ, "REQUIRE_DECLARATION")
    return Settings(
        table_name=table_name,
        stream_arn=environ.get("EVENTS_STREAM_ARN", ""),
        event_bus_name=_event_bus(environ),
        event_source=environ.get("EVENT_SOURCE") or DEFAULT_EVENT_SOURCE,
        detail_type=environ.get("EVENT_DETAIL_TYPE") or DEFAULT_DETAIL_TYPE,
        required_checks=required,
        order_timeout_seconds=_positive_int(environ, "ORDER_TIMEOUT_SECONDS", 900),
        pending_shards=_positive_int(environ, "PENDING_SHARDS", 4),
        publish_attempts=_positive_int(environ, "PUBLISH_ATTEMPTS", 4),
        stream_failure_queue=environ.get("STREAM_FAILURE_QUEUE") or failure_queue_name(table_name),
        notify_lease_seconds=_positive_int(environ, "NOTIFY_LEASE_SECONDS", 120),
        sweep_budget_seconds=_positive_int(environ, "SWEEP_BUDGET_SECONDS", 40),
        api_auth=_choice(environ, "API_AUTH", ("iam", "none"), "iam"),
        optional_checks=optional,
        require_declaration=require_declaration,
        completion_policy=_completion_policy(environ, required, optional, require_declaration),
    )


def _optional_checks(environ: Mapping[str, str], required: tuple[str, ...]) -> tuple[str, ...]:
    raw = environ.get("OPTIONAL_CHECKS")
    if not raw or not raw.strip():
        return ()
    optional = _parse_checks(raw, "OPTIONAL_CHECKS")
    both = [name for name in optional if name in required]
    if both:
        raise ConfigurationError(
            f"OPTIONAL_CHECKS names {both[0]!r}, which REQUIRED_CHECKS already names"
        )
    return optional


def _flag(environ: Mapping[str, str], key: str) -> bool:
    value = (environ.get(key) or "false").strip().lower()
    if value not in ("true", "false"):
        raise ConfigurationError(f"{key} must be 'true' or 'false', got {value!r}")
    return value == "true"


def _completion_policy(
    environ: Mapping[str, str],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    require_declaration: bool,
) -> CompletionPolicy | None:
    raw = environ.get("COMPLETION_POLICY")
    if not raw or not raw.strip():
        return None
    try:
        document: Any = json.loads(raw)
    except ValueError as err:
        raise ConfigurationError(f"COMPLETION_POLICY is not valid JSON: {err}") from None
    try:
        return parse_policy(document, required + optional, required, require_declaration)
    except PolicyError as err:
        raise ConfigurationError(f"COMPLETION_POLICY: {err}") from None


def _event_bus(environ: Mapping[str, str]) -> str:
    bus = environ.get("EVENT_BUS_NAME") or SUPPORTED_EVENT_BUS
    if bus != SUPPORTED_EVENT_BUS:
        raise ConfigurationError(
            f"EVENT_BUS_NAME must be {SUPPORTED_EVENT_BUS!r}, got {bus!r}: Chalice puts the "
            "on_cw_event rules on the default bus, so events put on another bus match no rule"
        )
    return bus


def failure_queue_name(table_name: str) -> str:
    """The stream failure queue's default name, derived from the table's."""
    return f"{table_name}-stream-failures"


def _choice(environ: Mapping[str, str], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = environ.get(key) or default
    if value not in allowed:
        raise ConfigurationError(f"{key} must be one of {list(allowed)}, got {value!r}")
    return value


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from ``os.environ`` on first use."""
    return load_settings(os.environ)
