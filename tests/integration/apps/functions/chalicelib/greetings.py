"""The app's own library: the greeting its ``hello`` function returns."""

from __future__ import annotations

import os


def greet(name: str) -> str:
    return f"{os.environ['GREETING']}, {name}{os.environ.get('PUNCTUATION', '.')}"
