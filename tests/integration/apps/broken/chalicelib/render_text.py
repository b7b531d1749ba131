"""Plain-text rendering."""

from __future__ import annotations

from typing import Any


def render(data: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(data.items()))
