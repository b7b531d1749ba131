"""Publishing to EventBridge: ``PutEvents`` calls that AWS accepts, retried when it fails.

AWS's limits shape every call: at most 10 entries, and a request whose entries total
256 KB or more is refused whole (``ValidationException``). Entry size follows AWS's rule
("Calculating PutEvents event entry size"): ``Time`` counts 14 bytes if given, ``Source``,
``DetailType``, ``Detail`` and each of ``Resources`` their UTF-8 bytes. So entries are
grouped by count *and* size, and an entry that alone is too large is never sent.

Failures are of two kinds:

* **transient** (throttling, internal errors, a call that raises): retried with
  exponential backoff; what still fails after the last attempt is returned in
  ``failed`` so the caller hands those records back to Lambda;
* **permanent** (too large, malformed): never retried; returned in ``rejected`` with the
  reason, for the caller to dead-letter.

Example::

    publisher = Publisher(aws.events(), attempts=4, backoff=0.05)
    result = publisher.publish(entries)   # result.failed, result.rejected, result.bytes
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.observability import (
    PUBLISH_FAILURES,
    PUBLISH_RETRIES,
    PUBLISHED_BYTES,
    count,
    count_bytes,
    logger,
)

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

MAX_ENTRIES_PER_CALL = 10
# "The total entry size must be less than 256KB."
MAX_REQUEST_BYTES = 256 * 1024
# Per-entry error codes that a later attempt can cure; any other code is permanent.
TRANSIENT_ENTRY_ERRORS = frozenset(
    {"ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable"}
)


def entry_size(entry: dict[str, Any]) -> int:
    """The size AWS counts for one ``PutEvents`` entry."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if value is not None:
            size += len(str(value).encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


def plan_calls(entries: Sequence[dict[str, Any]]) -> tuple[list[list[int]], list[int]]:
    """Group entry indexes into calls (≤ 10 entries, < 256 KB each), in order; also
    return the indexes of entries that no call can carry."""
    calls: list[list[int]] = []
    too_large: list[int] = []
    current: list[int] = []
    current_bytes = 0
    for index, entry in enumerate(entries):
        size = entry_size(entry)
        if size >= MAX_REQUEST_BYTES:
            too_large.append(index)
            continue
        if current and (
            len(current) == MAX_ENTRIES_PER_CALL or current_bytes + size >= MAX_REQUEST_BYTES
        ):
            calls.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        calls.append(current)
    return calls, too_large


@dataclass
class PublishResult:
    """What happened to a list of entries, by index into that list."""

    failed: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    published: int = 0
    bytes: int = 0


class Publisher:
    """Puts entries on the bus in calls AWS accepts, retrying what fails."""

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

    def publish(self, entries: Sequence[dict[str, Any]]) -> PublishResult:
        """Publish ``entries``; see :class:`PublishResult`."""
        result = PublishResult()
        calls, too_large = plan_calls(entries)
        for index in too_large:
            result.rejected[index] = (
                f"the event is {entry_size(entries[index])} bytes; PutEvents takes less "
                f"than {MAX_REQUEST_BYTES}"
            )
        for call in calls:
            failed, rejected = self._publish_call([entries[i] for i in call])
            result.failed += [call[i] for i in failed]
            result.rejected.update({call[i]: reason for i, reason in rejected.items()})
            done = [i for i in range(len(call)) if i not in failed and i not in rejected]
            result.published += len(done)
            result.bytes += sum(entry_size(entries[call[i]]) for i in done)
        count(PUBLISH_FAILURES, len(result.failed) + len(result.rejected))
        count_bytes(PUBLISHED_BYTES, result.bytes)
        return result

    def _publish_call(self, entries: Sequence[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
        """One call's entries; returns the indexes that still failed and those refused."""
        pending = list(range(len(entries)))
        rejected: dict[int, str] = {}
        for attempt in range(self._attempts):
            if attempt:
                count(PUBLISH_RETRIES, len(pending))
                self._sleep(self._backoff * (2 ** (attempt - 1)) * (1 + random.random()))
            pending, refused = self._put(entries, pending)
            rejected.update(refused)
            if not pending:
                break
        return pending, rejected

    def _put(
        self, entries: Sequence[dict[str, Any]], indexes: list[int]
    ) -> tuple[list[int], dict[int, str]]:
        """One ``PutEvents`` request: (transiently failed indexes, refused ones)."""
        try:
            response = self._client.put_events(Entries=[entries[i] for i in indexes])  # type: ignore[misc]
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            logger.warning("PutEvents call failed", extra={"error": str(err), "code": code})
            if code == "ValidationException" and len(indexes) == 1:
                return [], {indexes[0]: f"PutEvents refused the event: {err}"}
            return indexes, {}
        except BotoCoreError as err:
            logger.warning("PutEvents call failed", extra={"error": str(err)})
            return indexes, {}
        if not response.get("FailedEntryCount"):
            return [], {}
        failed: list[int] = []
        refused: dict[int, str] = {}
        for index, entry in zip(indexes, response.get("Entries", []), strict=False):
            error_code = entry.get("ErrorCode")
            if not error_code and entry.get("EventId"):
                continue
            logger.warning(
                "PutEvents entry failed",
                extra={"error_code": error_code, "error": entry.get("ErrorMessage")},
            )
            if error_code and error_code not in TRANSIENT_ENTRY_ERRORS:
                message = entry.get("ErrorMessage")
                refused[index] = f"PutEvents refused the event: {error_code}: {message}"
            else:
                failed.append(index)
        return failed, refused
