"""Publishing to EventBridge: ``PutEvents`` in calls of at most 10 entries.

Entries that EventBridge reports in ``FailedEntries`` (or a whole call that raises) are
retried with exponential backoff; what still fails after the last attempt is returned so
the caller can hand those records back to Lambda.

Example::

    publisher = Publisher(aws.events(), attempts=4, backoff=0.05)
    failed = publisher.publish(entries)   # indexes of entries that were not published
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.observability import PUBLISH_FAILURES, PUBLISH_RETRIES, count, logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

MAX_ENTRIES_PER_CALL = 10


def chunks(items: Sequence[Any], size: int = MAX_ENTRIES_PER_CALL) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class Publisher:
    """Puts entries on the bus, retrying what fails."""

    def __init__(
        self,
        client: EventBridgeClient,
        attempts: int = 4,
        backoff: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep

    def publish_call(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        """One call's worth (≤ 10) of entries; returns the indexes that still failed."""
        pending = list(range(len(entries)))
        for attempt in range(self._attempts):
            if attempt:
                count(PUBLISH_RETRIES, len(pending))
                self._sleep(self._backoff * (2 ** (attempt - 1)) * (1 + random.random()))
            pending = self._put(entries, pending)
            if not pending:
                return []
        count(PUBLISH_FAILURES, len(pending))
        return pending

    def _put(self, entries: Sequence[dict[str, Any]], indexes: list[int]) -> list[int]:
        try:
            response = self._client.put_events(Entries=[entries[i] for i in indexes])  # type: ignore[misc]
        except (ClientError, BotoCoreError) as err:
            logger.warning("PutEvents call failed", extra={"error": str(err)})
            return indexes
        if not response.get("FailedEntryCount"):
            return []
        failed = []
        for index, result in zip(indexes, response.get("Entries", []), strict=False):
            if result.get("ErrorCode") or not result.get("EventId"):
                logger.warning(
                    "PutEvents entry failed",
                    extra={
                        "error_code": result.get("ErrorCode"),
                        "error": result.get("ErrorMessage"),
                    },
                )
                failed.append(index)
        return failed
