"""The runtime's web UI: a live view of the local pipeline, for any Chalice app.

Served on its own port (:data:`DEFAULT_UI_PORT`; ``--ui-port``, 0 turns it off) by the
standard library's HTTP server; the page and its script ship in ``local/ui/static`` (no
CDN, no build step) and poll the JSON API below. Panels: Activity (every invocation),
Event flow (every event on the bus, the rules it matched or why none did), Streams and
queues (mappings, asynchronous queues, failure destinations and DLQs with a redrive
button), Patterns (a TestEventPattern sandbox) and the plug-in's own views.

The plug-in (:mod:`local.plugins`) may also offer, besides ``views()``:

* ``parked() -> list[dict]``: what the app itself parked (``source``, ``id``, ``label``,
  ``reason``, ``at``), shown next to the queues;
* ``redrive(source, id) -> dict``: redrive one of them (``ok``: bool, ``detail``: str).
"""

from local.ui.server import DEFAULT_UI_PORT, UiServer

__all__ = ["DEFAULT_UI_PORT", "UiServer"]
