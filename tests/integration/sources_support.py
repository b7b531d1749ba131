"""A sample app under ``python -m local run`` and the journal its handlers write.

Each sample app in ``apps/`` writes what a handler received (the event, the context's
fields, a per-function variable) to a table declared in its merge template; the tests
read that table over loopback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.integration.test_local_runtime import RuntimeProcess

APPS = Path(__file__).parent / "apps"
SESSION = boto3.session.Session(
    region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
)


@dataclass(frozen=True)
class Entry:
    handler: str
    event: dict[str, Any]
    context: dict[str, Any]
    shift: str


class SampleApp:
    """One sample app in its own runtime process (free ports)."""

    def __init__(self, name: str, *args: str) -> None:
        self.proc = RuntimeProcess("--project-dir", str(APPS / name), *args)
        found = self.proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)", 90)
        self.url, self.endpoint = found.group(1), found.group(2)

    def client(self, service: str) -> Any:
        return SESSION.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def entries(self, table: str, handler: str | None = None) -> list[Entry]:
        """Everything the handlers wrote to ``table`` (a Scan: tests only)."""
        items = self.client("dynamodb").get_paginator("scan").paginate(TableName=table)
        found = [
            Entry(
                item["handler"]["S"],
                json.loads(item["event"]["S"]),
                json.loads(item["context"]["S"]),
                item.get("shift", {}).get("S", ""),
            )
            for page in items
            for item in page["Items"]
        ]
        return [e for e in found if handler is None or e.handler == handler]

    def wait_for(
        self,
        table: str,
        handler: str,
        ready: Callable[[list[Entry]], bool],
        timeout: float = 60.0,
    ) -> list[Entry]:
        """Poll the journal until ``ready(entries of handler)``; fail with the output."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.entries(table, handler)
            if ready(entries):
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{handler} never got there: {entries}\n" + "\n".join(self.proc.lines[-40:])
                )
            time.sleep(0.2)

    def stop(self) -> None:
        assert self.proc.stop() == 0, "\n".join(self.proc.lines[-40:])


def records(entries: list[Entry]) -> list[dict[str, Any]]:
    return [record for entry in entries for record in entry.event["Records"]]
