"""What the runtime plays of a Chalice app, per decorator, and what it does not.

One table (:data:`DRIVEN`): the event-source configuration classes of ``chalice.app``
whose triggers the runtime feeds, by the decorator that makes them. Whatever else the app
declares is named in one start-up line by :func:`unsupported_line`, never skipped in
silence. Every function, driven or not, can still be invoked through the Lambda Invoke
API (:mod:`local.invoke_api`). A module that adds an event source adds its row here.

Example::

    unsupported_line(app)
    # "not run by this runtime (their triggers never fire): on_ws_message (message)"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# chalice.app config class → the decorator; the runtime feeds these triggers.
DRIVEN: dict[str, str] = {
    "DynamoDBEventConfig": "on_dynamodb_record",
    "CloudWatchEventConfig": "on_cw_event",
    "ScheduledEventConfig": "schedule",
    "SQSEventConfig": "on_sqs_message",  # local/sqs.py
    "SNSEventConfig": "on_sns_message",  # local/sns.py
    "S3EventConfig": "on_s3_event",  # local/s3.py
    "KinesisEventConfig": "on_kinesis_record",  # local/kinesis.py
}
# Every decorator that declares a trigger, by its config class (chalice.app).
DECORATORS: dict[str, str] = {
    **DRIVEN,
    "S3EventConfig": "on_s3_event",
    "SNSEventConfig": "on_sns_message",
    "SQSEventConfig": "on_sqs_message",
    "KinesisEventConfig": "on_kinesis_record",
    "WebsocketConnectConfig": "on_ws_connect",
    "WebsocketMessageConfig": "on_ws_message",
    "WebsocketDisconnectConfig": "on_ws_disconnect",
}


def unsupported(app: Any) -> list[tuple[str, str]]:
    """(decorator, function) of every trigger the runtime does not feed."""
    found: list[tuple[str, str]] = []
    sources = [*app.event_sources, *app.websocket_handlers.values()]
    for source in sources:
        kind = type(source).__name__
        if kind not in DRIVEN:
            found.append((DECORATORS.get(kind, kind), source.name))
    return sorted(set(found))


def unsupported_line(app: Any, settings_not_played: Sequence[str] = ()) -> str | None:
    """One line naming what is not played, or None when everything is.
    ``settings_not_played``: trigger settings the runtime reads but does not play
    (:attr:`local.template.EventTriggers.unsupported`, e.g. ``FilterCriteria of
    on_sqs_message take``)."""
    missing = unsupported(app)
    parts = []
    if missing:
        named = ", ".join(f"{decorator} ({function})" for decorator, function in missing)
        parts.append(f"not run by this runtime (their triggers never fire): {named}")
    if settings_not_played:
        parts.append(f"not played locally: {', '.join(settings_not_played)}")
    return "; ".join(parts) or None
