"""A runtime plug-in for benchmarks: when the invoice handler finished each order.

With every function in its own worker process, as Lambda runs it, a benchmark cannot
patch the app to see its outcomes; it sees what the runtime sees. Start the runtime with
``RuntimeOptions(plugin="bench.hops")`` and read :data:`OUTCOMES`: an order counts as
invoiced when an ``invoice_processing`` invocation for it returned ``invoiced``.
"""

from __future__ import annotations

import time
from typing import Any

from bench.loadgen import Outcomes
from local.plugins import Hop, PluginContext

INVOICE_FUNCTION = "invoice_processing"  # the name app.py gives the handler
OUTCOMES = Outcomes()


class InvoiceHops:
    """Records invoiced orders from the runtime's hops; prints the runtime's own lines."""

    def describe_hop(self, hop: Hop) -> str | None:
        if hop.function == INVOICE_FUNCTION and hop.result == "ok" and "invoiced" in hop.detail:
            detail: Any = hop.event.get("detail") or {}
            order = detail.get("OrderID") if isinstance(detail, dict) else None
            if isinstance(order, str):
                with OUTCOMES.lock:
                    OUTCOMES.created[order].append(("invoiced", time.monotonic()))
        return None


def plugin(context: PluginContext) -> InvoiceHops:
    return InvoiceHops()
