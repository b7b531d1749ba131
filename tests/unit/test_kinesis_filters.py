"""What a Kinesis mapping's FilterCriteria see (local.kinesis.KinesisReader.filtered_view).

"Kinesis event source mappings only support filtering on the data key" (Lambda developer
guide, with-kinesis-filtering): a pattern is matched on the record's data, decoded from
base64 and parsed as JSON. Data that is not JSON gives a pattern on ``data`` nothing to
match, so Lambda discards the record (invocation-eventfiltering).
"""

from __future__ import annotations

import base64
from typing import Any

from local.eventbridge import matches
from local.kinesis import KinesisReader

PURCHASES = {"data": {"kind": ["purchase"]}}


def view(data: bytes) -> dict[str, Any]:
    record = {"kinesis": {"data": base64.b64encode(data).decode(), "partitionKey": "p"}}
    return KinesisReader.__new__(KinesisReader).filtered_view(record)


def test_json_data_is_matched_by_its_fields() -> None:
    assert view(b'{"kind": "purchase", "n": 1}') == {"data": {"kind": "purchase", "n": 1}}
    assert matches(PURCHASES, view(b'{"kind": "purchase"}'))
    assert not matches(PURCHASES, view(b'{"kind": "view"}'))


def test_data_that_is_not_json_fails_a_pattern_on_data() -> None:
    for data in (b"kind purchase", b"\xff\xfe", b""):
        assert view(data) == {}
        assert not matches(PURCHASES, view(data))


def test_only_the_data_key_is_visible_to_a_pattern() -> None:
    assert not matches({"partitionKey": ["p"]}, view(b'{"kind": "purchase"}'))
