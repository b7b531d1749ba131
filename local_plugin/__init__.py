"""This app's plug-in for the local runtime (``[tool.chalice-local] plugin`` in
pyproject.toml; the contract is :mod:`local.plugins`).

The runtime itself knows nothing of orders: it prints generic hop lines and runs no
scenario. This package gives it what only this app knows:

* :func:`describe_hop`: the order-shaped console lines (``[order 7] rule matched →
  invoice_processing``), in :mod:`local_plugin.hops`;
* :func:`demo`: ``python -m local demo``'s reference scenario, in :mod:`local_plugin.demo`;
* ``views()``: this app's boards for the runtime's web UI live in ``local_plugin/views.py``
  (re-exported below once it exists).
"""

from __future__ import annotations

from local_plugin.demo import demo
from local_plugin.hops import describe_hop

# UI views: `from local_plugin.views import views` goes here (and into __all__).

__all__ = ["demo", "describe_hop"]
