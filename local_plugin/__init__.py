"""This app's plug-in for the local runtime (``[tool.chalice-local] plugin`` in
pyproject.toml; the contract is :mod:`local.plugins`).

The runtime itself knows nothing of orders: it prints generic hop lines, runs no
scenario and draws generic panels. This package gives it what only this app knows:

* ``describe_hop``: the order-shaped console lines (``[order 7] rule matched →
  invoice_processing``), in :mod:`local_plugin.hops`;
* ``demo``: ``python -m local demo``'s reference scenario, in :mod:`local_plugin.demo`;
* ``views``, ``parked`` and ``redrive``: the orders board, each order's timeline and the
  parked records for the runtime's web UI, in :mod:`local_plugin.views`.
"""

from __future__ import annotations

from local.plugins import Hop, PluginContext
from local_plugin.demo import demo
from local_plugin.hops import describe_hop
from local_plugin.views import OrdersViews


class ShopPlugin(OrdersViews):
    """Every hook of this app's plug-in on one object."""

    def describe_hop(self, hop: Hop) -> str | None:
        return describe_hop(hop)

    def demo(self, url: str) -> int:
        return demo(url)


def plugin(context: PluginContext) -> ShopPlugin:
    return ShopPlugin(context)


__all__ = ["ShopPlugin", "demo", "describe_hop", "plugin"]
