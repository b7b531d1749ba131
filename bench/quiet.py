"""Keep the app's logs and metrics off the report, and count their bytes.

The app writes JSON log lines (Powertools ``Logger``) and EMF metric lines (``print``) to
stdout, as Lambda expects; during the benchmarks they go to :data:`SINK`, which counts the
bytes CloudWatch Logs would ingest.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import Any

from chalicelib.observability import SERVICE, logger


class CountingSink(io.TextIOBase):
    """A text stream that keeps nothing but the number of UTF-8 bytes written."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        return len(text)

    def writable(self) -> bool:
        return True


SINK = CountingSink()


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    handlers: list[logging.Handler] = [logger.registered_handler]
    handlers += logging.getLogger(SERVICE).handlers
    found: list[logging.StreamHandler[Any]] = []
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and handler not in found:
            found.append(handler)
    return found


@contextlib.contextmanager
def quiet() -> Iterator[CountingSink]:
    """Send the app's log and metric lines to :data:`SINK` while the block runs."""
    saved: list[tuple[logging.StreamHandler[Any], Any]] = []
    for handler in _stream_handlers():
        saved.append((handler, handler.setStream(SINK)))
    try:
        with contextlib.redirect_stdout(SINK):
            yield SINK
    finally:
        for handler, stream in saved:
            if stream is not None:
                handler.setStream(stream)
