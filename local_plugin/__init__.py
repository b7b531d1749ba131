"""This app's plug-in for the local runtime (local/plugins.py): the runtime imports
nothing from the app; it loads this package, named in pyproject.toml
(``[tool.chalice-local] plugin = "local_plugin"``), and asks it for its hooks.

Minimal version from the UI branch: ``views()``, ``parked()`` and ``redrive()`` (the
orders board, :mod:`local_plugin.views`). The "invoke" branch adds ``describe_hop`` and
``demo`` to the same package.
"""

from __future__ import annotations

from local.plugins import PluginContext
from local_plugin.views import OrdersViews


def plugin(context: PluginContext) -> OrdersViews:
    return OrdersViews(context)
