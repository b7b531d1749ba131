"""App plug-ins: what only the app knows, given to the runtime without it importing the app.

The runtime is generic: it prints one line per hop (function, event source, record count,
result) and its web UI shows invocations, events, streams and queues for any Chalice app.
An app that wants more (its own wording for a hop, a demo scenario, its own board in the
UI) names a plug-in module in its ``pyproject.toml``::

    [tool.chalice-local]
    plugin = "local_plugin"

or on the command line (``python -m local run --plugin local_plugin``). The module is
imported from the project directory, after the app's own environment is applied, and is
asked for a ``plugin(context)`` factory (or a module-level ``PLUGIN``). Every hook is
optional: the runtime checks with :func:`hook` and falls back to its own behaviour.

Hooks (all optional):

* ``describe_hop(hop: Hop) -> str | None``: the console line for one hop, or None for the
  runtime's generic line.
* ``demo(url: str) -> int``: ``python -m local demo`` runs this against the runtime's
  HTTP API at ``url``; returns the exit code.
* ``views() -> list[View]``: extra panels for the web UI. A view answers JSON in one of
  the generic shapes the UI draws (``board``: columns of cards; ``timeline``: entries).
* ``parked() -> list[dict]`` and ``redrive(key) -> dict``: records the app itself set
  aside (this app's ``#dead-letter`` items), listed and redriven from the UI's queues
  panel (see :mod:`local.ui`).

Example::

    plugin = load_plugin(Path("."), PluginContext(endpoint_url=..., environment=env))
    describe = hook(plugin, "describe_hop")
    line = (describe(hop) if describe else None) or hop.generic_line()
    # what the runtime does with every hop (and with its own notes, plain strings):
    HopPrinter(print, describe)(hop)
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PYPROJECT_TABLE = "chalice-local"
# A generic hop line shows at most this much of its detail (a handler's value, an error).
DETAIL_CHARS = 300


class PluginError(RuntimeError):
    """The configured plug-in cannot be loaded; the message names it and the cause."""


@dataclass(frozen=True)
class PluginContext:
    """What a plug-in gets: where the embedded AWS is and the app's stage environment."""

    endpoint_url: str
    environment: Mapping[str, str]
    region: str = "us-east-1"


@dataclass(frozen=True)
class Hop:
    """One step of the pipeline, as the runtime saw it."""

    function: str
    source: str  # "dynamodb", "sqs", "sns", "s3", "kinesis", "eventbridge", "schedule", ...
    records: int
    result: str  # "ok", "failed", "partial", "discarded", "published", "matched", ...
    event: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    def generic_line(self) -> str:
        count = f"{self.records} record{'s' if self.records != 1 else ''}"
        who = f"{self.function} ({count})" if self.function else count
        detail = (
            self.detail if len(self.detail) <= DETAIL_CHARS else self.detail[:DETAIL_CHARS] + "…"
        )
        tail = f": {detail}" if detail else ""
        return f"[{self.source}] {who} → {self.result}{tail}"


class HopPrinter:
    """Prints hops: the plug-in's ``describe_hop`` line, else :meth:`Hop.generic_line`.
    Plain strings (the runtime's own notes) are printed as they are. A ``describe_hop``
    that raises is reported once and the generic line is used from then on."""

    def __init__(
        self, write: Callable[[str], None], describe: Callable[..., Any] | None = None
    ) -> None:
        self._write = write
        self._describe = describe

    def __call__(self, hop: str | Hop) -> None:
        if isinstance(hop, str):
            self._write(hop)
            return
        self._write(self.line(hop))

    def line(self, hop: Hop) -> str:
        if self._describe is not None:
            try:
                described = self._describe(hop)
            except Exception as err:  # noqa: BLE001 - the plug-in's bug must not stop a hop
                self._describe = None
                self._write(f"plug-in describe_hop failed, generic lines from now: {err!r}")
            else:
                if isinstance(described, str) and described:
                    return described
        return hop.generic_line()


@dataclass(frozen=True)
class View:
    """A UI panel: ``data()`` answers JSON in the shape ``kind`` names; ``detail(key)``
    answers the JSON for one card (a ``timeline`` for a board's card)."""

    name: str
    title: str
    kind: str  # "board" or "timeline"
    data: Callable[[], Any]
    detail: Callable[[str], Any] | None = None


class Plugin(Protocol):
    """Marker protocol: a plug-in is any object; see the module docstring for the hooks."""


def configured_plugin(project_dir: Path) -> str | None:
    """The plug-in module that ``pyproject.toml`` names, if any."""
    pyproject = project_dir / "pyproject.toml"
    if not pyproject.is_file():
        return None
    with pyproject.open("rb") as handle:
        table = tomllib.load(handle).get("tool", {}).get(PYPROJECT_TABLE, {})
    name = table.get("plugin")
    return name if isinstance(name, str) and name else None


def load_plugin(
    project_dir: Path, context: PluginContext, name: str | None = None
) -> object | None:
    """Import the plug-in (``name``, else the configured one); None if there is none."""
    module_name = name or configured_plugin(project_dir)
    if module_name is None:
        return None
    root = str(project_dir.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, "plugin", None)
        if callable(factory):
            made: object = factory(context)
            return made
        return getattr(module, "PLUGIN", module)
    except Exception as err:  # one line naming the plug-in and the cause
        raise PluginError(
            f"plug-in {module_name!r} from {project_dir} did not load: {type(err).__name__}: {err}"
        ) from err


def hook(plugin: object | None, name: str) -> Callable[..., Any] | None:
    """The plug-in's hook ``name`` if it has one."""
    found = getattr(plugin, name, None) if plugin is not None else None
    return found if callable(found) else None
