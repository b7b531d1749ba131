"""AWS clients, created on first use and cached for the life of the process.

Each is created once even when several threads ask for it at the same moment (boto3
clients are thread-safe once made; making one takes tens of milliseconds). They follow the standard AWS environment (``AWS_REGION``, ``AWS_ENDPOINT_URL`` …), so the
same code runs in Lambda, under moto and against the local runtime. Call
:func:`reset_clients` after changing that environment (tests do).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_events import EventBridgeClient


_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _client(service: str) -> Any:
    client = _clients.get(service)
    if client is None:
        with _lock:
            client = _clients.get(service)
            if client is None:
                client = _clients[service] = _create(service)
    return client


def _create(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
    )
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


def dynamodb_streams() -> DynamoDBStreamsClient:
    client: DynamoDBStreamsClient = _client("dynamodbstreams")
    return client


def events() -> EventBridgeClient:
    client: EventBridgeClient = _client("events")
    return client


def reset_clients() -> None:
    with _lock:
        _clients.clear()
