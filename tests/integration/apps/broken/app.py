"""A Chalice app with handlers that fail the way real ones do.

* ``report`` renders with the module its ``REPORT_FORMAT`` names; for ``report`` that is
  ``chalicelib.render_pdf``, which needs a package that is not installed, so its function
  fails at import (the others render text and load);
* ``greet`` formats ``GREETING_TEMPLATE``, which nobody sets;
* ``ping`` works.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

from chalice.app import Chalice

app = Chalice(app_name="broken-handlers")
render = importlib.import_module(f"chalicelib.render_{os.environ.get('REPORT_FORMAT', 'text')}")


@app.lambda_function()
def report(event: dict[str, Any], context: Any) -> str:
    return str(render.render(event))


@app.lambda_function()
def greet(event: dict[str, Any], context: Any) -> str:
    template = os.environ.get("GREETING_TEMPLATE")
    return re.sub(r"\{name\}", str(event.get("name")), template)  # type: ignore[arg-type]


@app.lambda_function()
def ping(event: dict[str, Any], context: Any) -> str:
    return "pong"
