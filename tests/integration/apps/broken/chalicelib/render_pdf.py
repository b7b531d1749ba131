"""PDF rendering, with a library this machine does not have."""

from __future__ import annotations

from typing import Any

import pdf_toolkit_not_installed  # type: ignore[import-not-found]


def render(data: dict[str, Any]) -> str:
    return str(pdf_toolkit_not_installed.render(data))
