"""Order jobs arrive on SQS queues; each batch a worker takes is written to a journal.

``take_jobs`` reads ``order-jobs`` (its mapping reports partial batch failures, in the
merge template); a job whose body is ``poison`` always fails, so SQS moves it to the
queue's dead-letter queue after ``maxReceiveCount`` receives; a job ``crash`` makes the
handler raise, which fails its whole batch. The queue's visibility timeout (20 s) is
longer than a worker's cold start: a message whose timeout ends while its batch still
runs is delivered again, locally as on AWS. ``take_plain`` reads
``plain-jobs`` (declared by nothing but this decorator) and reports every message as
failed, which its mapping must ignore: it has no ``ReportBatchItemFailures``.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, SQSEvent

from chalicelib import ledger  # type: ignore[attr-defined]  # this app's own (mypy sees the project's)

app = Chalice(app_name="order-queues")


@app.on_sqs_message(
    queue="order-jobs", batch_size=5, maximum_batching_window_in_seconds=1, name="take_jobs"
)
def take_jobs(event: SQSEvent) -> dict[str, Any]:
    records = event.to_dict()["Records"]
    ledger.write("take_jobs", event.to_dict(), event.context)
    if any(r["body"] == "crash" for r in records):
        raise RuntimeError("a job crashed the worker")
    poisoned = [r["messageId"] for r in records if r["body"] == "poison"]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in poisoned]}


@app.on_sqs_message(queue="plain-jobs", batch_size=10, name="take_plain")
def take_plain(event: SQSEvent) -> dict[str, Any]:
    records = event.to_dict()["Records"]
    ledger.write("take_plain", event.to_dict(), event.context)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
