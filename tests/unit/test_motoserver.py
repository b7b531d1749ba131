"""The runtime's fixes to moto (local.motoserver): same answers as DynamoDB, and they
refuse to apply to a moto version they were not verified on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws

from local import motoserver


@pytest.fixture
def table() -> Iterator[Any]:
    motoserver.patch_moto()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byG",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for p in range(5):
            for s in range(4):
                client.put_item(
                    TableName="t",
                    Item={"pk": {"S": f"p{p}"}, "sk": {"S": f"s{s}"}, "g": {"S": f"g{s}"}},
                )
        yield client


def test_a_base_table_query_returns_exactly_its_partition_in_order(table: Any) -> None:
    found = table.query(
        TableName="t",
        KeyConditionExpression="pk = :p AND sk > :s",
        ExpressionAttributeValues={":p": {"S": "p3"}, ":s": {"S": "s0"}},
        ConsistentRead=True,
    )["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in found] == [
        ("p3", "s1"),
        ("p3", "s2"),
        ("p3", "s3"),
    ]


def test_an_index_query_still_reads_the_whole_index(table: Any) -> None:
    found = table.query(
        TableName="t",
        IndexName="byG",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "g2"}},
    )["Items"]
    assert sorted(i["pk"]["S"] for i in found) == [f"p{p}" for p in range(5)]


def test_the_fixes_are_in_place_after_patching() -> None:
    from moto.dynamodb.models.table import Table

    motoserver.patch_moto()
    assert getattr(Table.query, "_local_patched", False)


def test_the_fixes_refuse_an_unverified_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    assert moto.__version__ == motoserver.VERIFIED_MOTO  # requirements-dev pins it
    monkeypatch.setattr(moto, "__version__", "999.0.0")
    with pytest.raises(RuntimeError, match="verified on moto"):
        motoserver.patch_moto()
