"""JSON Schemas (draft 2020-12) of every ``python -m ops --json`` document.

These are the contract for scripts (docs/operating.md describes them in prose); the
tests validate the command line's real output against them. Times are the app's
fixed-width UTC strings (``2026-12-01T09:36:04.691504Z``), which sort as they compare.
"""

from __future__ import annotations

from typing import Any

TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"}
NULLABLE_TIME = {"anyOf": [TIME, {"type": "null"}]}
STRING_LIST = {"type": "array", "items": {"type": "string"}}
NULLABLE_STRING = {"type": ["string", "null"]}
STATUS = {"enum": ["pending", "approved", "rejected", "invoiced", "timed-out", "unknown"]}
WAITING_FOR = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["step", "detail"],
        "additionalProperties": False,
        "properties": {
            "step": {
                "enum": [
                    "check",
                    "aggregator",
                    "invoice",
                    "problem",
                    "timeout",
                    "notification",
                    "operator",
                ]
            },
            "detail": {"type": "string"},
        },
    },
}


def _command(usage: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """The schema of one command's ``--json`` output: an object with ``command`` (the
    command's name, the first word of ``usage``) and ``properties``, nothing else."""
    command = usage.split()[0]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"python -m ops --json {usage}",
        "type": "object",
        "required": ["command", *required],
        "additionalProperties": False,
        "properties": {"command": {"const": command}, **properties},
    }


DEAD_LETTER: dict[str, Any] = {
    "type": "object",
    "required": ["orderId", "fault", "reason", "parkedAt"],
    "properties": {
        "orderId": {"type": "string"},
        "fault": {"type": "string"},
        "reason": {"type": "string"},
        "parkedAt": {"type": "string"},
    },
}
TIMELINE_ENTRY = {
    "type": "object",
    "required": ["at", "event", "summary"],
    "properties": {
        "at": {"type": "string"},
        "event": {
            "enum": [
                "check-result",
                "opened",
                "deadline",
                "outcome",
                "customer-told",
                "notification-lease",
                "dead-lettered",
            ]
        },
        "summary": {"type": "string"},
    },
    "allOf": [
        {
            "if": {"properties": {"event": {"const": "check-result"}}},
            "then": {
                "required": ["check", "status", "occurredAt", "recordedAt", "reason", "late"],
                "properties": {
                    "check": {"type": "string"},
                    "status": {"enum": ["passed", "failed"]},
                    "occurredAt": TIME,
                    "recordedAt": NULLABLE_TIME,
                    "reason": NULLABLE_STRING,
                    "late": {"type": "boolean"},
                },
            },
        },
        {
            "if": {"properties": {"event": {"const": "outcome"}}},
            "then": {
                "required": ["kind"],
                "properties": {"kind": {"enum": ["invoiced", "rejected", "timed-out"]}},
            },
        },
        {
            "if": {"properties": {"event": {"const": "dead-lettered"}}},
            "then": {"required": ["fault", "reason"]},
        },
    ],
}
INSPECT = _command(
    "inspect ORDER_ID",
    [
        "orderId",
        "status",
        "requiredChecks",
        "missing",
        "deadline",
        "due",
        "outcome",
        "notification",
        "deadLetter",
        "recordCorrupt",
        "problems",
        "waitingFor",
        "timeline",
    ],
    {
        "orderId": {"type": "string"},
        "status": STATUS,
        "requiredChecks": STRING_LIST,
        "missing": STRING_LIST,
        "deadline": NULLABLE_TIME,
        "due": {"type": "boolean"},
        "outcome": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["kind", "at", "invoice", "problem"],
                    "properties": {
                        "kind": {"enum": ["invoiced", "rejected", "timed-out"]},
                        "at": TIME,
                        "invoice": {"type": ["object", "null"]},
                        "problem": {"type": ["object", "null"]},
                    },
                },
            ]
        },
        "notification": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["state", "notifiedAt", "leaseUntil"],
                    "properties": {
                        "state": {"enum": ["told", "claimed", "lease-expired", "not-claimed"]},
                        "notifiedAt": NULLABLE_TIME,
                        "leaseUntil": NULLABLE_TIME,
                    },
                },
            ]
        },
        "deadLetter": {"anyOf": [{"type": "null"}, DEAD_LETTER]},
        "recordCorrupt": {"type": "boolean"},
        "problems": STRING_LIST,
        "waitingFor": WAITING_FOR,
        "timeline": {"type": "array", "items": TIMELINE_ENTRY},
    },
)
PENDING = _command(
    "pending",
    ["now", "due", "olderThanSeconds", "shards", "orders", "truncated"],
    {
        "now": TIME,
        "due": {"type": "boolean"},
        "olderThanSeconds": {"type": ["integer", "null"]},
        "shards": STRING_LIST,
        "truncated": {"type": "boolean"},
        "orders": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "orderId",
                    "status",
                    "deadline",
                    "due",
                    "firstSeenAt",
                    "missing",
                    "waitingFor",
                    "problems",
                ],
                "additionalProperties": False,
                "properties": {
                    "orderId": {"type": "string"},
                    "status": STATUS,
                    "deadline": NULLABLE_TIME,
                    "due": {"type": "boolean"},
                    "firstSeenAt": NULLABLE_TIME,
                    "missing": STRING_LIST,
                    "waitingFor": WAITING_FOR,
                    "problems": STRING_LIST,
                },
            },
        },
    },
)
MESSAGE = {
    "type": "object",
    "required": [
        "messageId",
        "sentAt",
        "receiveCount",
        "kind",
        "orderIds",
        "resolved",
        "note",
        "range",
    ],
    "additionalProperties": False,
    "properties": {
        "messageId": {"type": "string"},
        "sentAt": NULLABLE_TIME,
        "receiveCount": {"type": ["integer", "null"]},
        "kind": {"enum": ["stream-range", "lambda-destination", "event", "unknown"]},
        "orderIds": STRING_LIST,
        "resolved": {"type": "boolean"},
        "note": NULLABLE_STRING,
        "range": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["streamArn", "shardId", "start", "end"],
                    "properties": {
                        "streamArn": {"type": "string"},
                        "shardId": {"type": "string"},
                        "start": {"type": "string"},
                        "end": {"type": "string"},
                    },
                },
            ]
        },
    },
}
DEAD_LETTERS = _command(
    "dead-letters",
    ["records", "queues", "orderIds"],
    {
        "records": {
            "type": "array",
            "items": {
                **DEAD_LETTER,
                "required": [*DEAD_LETTER["required"], "kind"],
                "properties": {
                    **DEAD_LETTER["properties"],
                    "kind": {"enum": ["order", "stream-range"]},
                },
            },
        },
        "queues": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "source",
                    "name",
                    "exists",
                    "note",
                    "approximateMessages",
                    "inFlight",
                    "messages",
                ],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string"},
                    "name": {"type": "string"},
                    "exists": {"type": "boolean"},
                    "note": NULLABLE_STRING,
                    "approximateMessages": {"type": ["integer", "null"]},
                    "inFlight": {"type": ["integer", "null"]},
                    "messages": {"type": "array", "items": MESSAGE},
                },
            },
        },
        "orderIds": STRING_LIST,
    },
)
ORDER_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["orderId", "action", "status", "detail"],
    "properties": {
        "orderId": {"type": "string"},
        "action": {
            "enum": [
                "published",
                "would-publish",
                "already-decided",
                "not-found",
                "nothing-reported",
                "unreadable",
                "failed",
                "refused",
            ]
        },
        "status": NULLABLE_STRING,
        "detail": {"type": "string"},
    },
}
REDRIVE = _command(
    "redrive",
    ["dryRun", "named", "orders", "entries", "skipped", "queueNotes"],
    {
        "dryRun": {"type": "boolean"},
        "named": STRING_LIST,
        "orders": {"type": "array", "items": {**ORDER_RESULT, "additionalProperties": False}},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "id", "orderIds", "result"],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string"},
                    "id": {"type": "string"},
                    "orderIds": STRING_LIST,
                    "result": {"type": "string"},
                },
            },
        },
        "skipped": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "id", "note"],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string"},
                    "id": {"type": "string"},
                    "note": {"type": "string"},
                },
            },
        },
        "queueNotes": STRING_LIST,
    },
)
REPLAY = _command(
    "replay ORDER_ID ...",
    ["dryRun", "orders"],
    {
        "dryRun": {"type": "boolean"},
        "orders": {
            "type": "array",
            "items": {
                **ORDER_RESULT,
                "required": [*ORDER_RESULT["required"], "event"],
                "properties": {
                    **ORDER_RESULT["properties"],
                    "event": {
                        "anyOf": [
                            {"type": "null"},
                            {"type": "object", "required": ["OrderID", "status"]},
                        ]
                    },
                },
                "additionalProperties": False,
            },
        },
    },
)
SCHEMAS: dict[str, dict[str, Any]] = {
    "inspect": INSPECT,
    "pending": PENDING,
    "dead-letters": DEAD_LETTERS,
    "redrive": REDRIVE,
    "replay": REPLAY,
}
