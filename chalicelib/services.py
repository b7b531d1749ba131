"""The app's objects, built on first use from the settings and cached.

``app.py`` asks for what a handler needs; tests call :func:`reset` after changing the
environment so everything is rebuilt against it.
"""

from __future__ import annotations

import functools

from chalicelib import aws
from chalicelib.aggregator import Aggregator
from chalicelib.api import OrdersApi
from chalicelib.config import get_settings
from chalicelib.outcomes import OutcomeService
from chalicelib.publisher import Publisher
from chalicelib.recovery import StreamRecovery
from chalicelib.store import EventStore
from chalicelib.timeouts import TimeoutSweep


@functools.lru_cache(maxsize=1)
def store() -> EventStore:
    settings = get_settings()
    return EventStore(aws.dynamodb(), settings.table_name, settings.order_timeout_seconds)


@functools.lru_cache(maxsize=1)
def publisher() -> Publisher:
    settings = get_settings()
    return Publisher(aws.events(), settings.publish_attempts, settings.publish_backoff_seconds)


def orders_api() -> OrdersApi:
    return OrdersApi(store(), get_settings())


def aggregator() -> Aggregator:
    return Aggregator(store(), publisher(), get_settings())


def outcomes() -> OutcomeService:
    return OutcomeService(store(), get_settings())


def timeout_sweep() -> TimeoutSweep:
    return TimeoutSweep(store(), publisher(), get_settings(), outcomes())


def stream_recovery() -> StreamRecovery:
    return StreamRecovery(aws.dynamodb_streams(), aggregator(), store())


def reset() -> None:
    """Forget cached settings, clients and objects (after the environment changed)."""
    get_settings.cache_clear()
    aws.reset_clients()
    store.cache_clear()
    publisher.cache_clear()
