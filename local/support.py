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

from typing import Any

# chalice.app config class → the decorator; the runtime feeds these triggers.
DRIVEN: dict[str, str] = {
    "DynamoDBEventConfig": "on_dynamodb_record",
    "CloudWatchEventConfig": "on_cw_event",
    "ScheduledEventConfig": "schedule",
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


def unsupported_line(app: Any) -> str | None:
    """One line naming what is not played, or None when everything is."""
    missing = unsupported(app)
    if not missing:
        return None
    named = ", ".join(f"{decorator} ({function})" for decorator, function in missing)
    return f"not run by this runtime (their triggers never fire): {named}"
