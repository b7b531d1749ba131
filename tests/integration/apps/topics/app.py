"""Stock alerts published to SNS topics; each alert a handler receives goes to a journal.

``on_alert`` is subscribed to ``stock-alerts`` (declared in the merge template);
``on_audit`` to ``audit-trail``, named by nothing but its decorator.
"""

from __future__ import annotations

from chalice.app import Chalice, SNSEvent

from chalicelib import notes  # type: ignore[attr-defined]  # this app's own (mypy sees the project's)

app = Chalice(app_name="stock-alerts")


@app.on_sns_message(topic="stock-alerts", name="on_alert")
def on_alert(event: SNSEvent) -> None:
    notes.keep("on_alert", event.to_dict(), event.context, event.subject)


@app.on_sns_message(topic="audit-trail", name="on_audit")
def on_audit(event: SNSEvent) -> None:
    notes.keep("on_audit", event.to_dict(), event.context, event.subject)
