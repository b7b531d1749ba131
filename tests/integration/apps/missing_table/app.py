"""A customer directory whose stage names a table that nothing declares.

``TABLE_NAME`` is set in the ``local`` stage, but no merge template declares the table,
so its key schema appears nowhere: the local runtime must refuse to start and say how to
supply it, never create a table with a guessed schema.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from chalice.app import Chalice

app = Chalice(app_name="customer-directory")


@app.route("/customers/{customer_id}")
def get_customer(customer_id: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    item: dict[str, Any] = table.get_item(Key={"CustomerId": customer_id}).get("Item") or {}
    return item
