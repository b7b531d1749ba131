"""``on_s3_event`` on the local runtime: event types, key filters, S3's record shape.

A real ``python -m local run`` process serves the sample app in ``apps/buckets``; the test
puts and deletes objects in its bucket and reads what the handlers wrote. The rules:

* notification-how-to-event-types-and-destinations: a notification fires only for the
  event types it names (``s3:ObjectCreated:*``, ``s3:ObjectRemoved:*``);
* notification-how-to-filtering: and only for keys with its ``prefix`` and ``suffix``;
* notification-content-structure: ``eventVersion``, ``eventSource`` ``aws:s3``,
  ``awsRegion``, ``eventTime`` (ISO-8601, ``1970-01-01T00:00:00.000Z``), ``eventName``,
  ``userIdentity``, ``requestParameters``, ``responseElements``, and ``s3`` with
  ``s3SchemaVersion``, ``configurationId``, ``bucket`` (``name``, ``ownerIdentity``,
  ``arn``) and ``object`` (``key``, ``size``, ``eTag``, ``sequencer``), the key
  URL-encoded;
* with-s3: S3 invokes the function asynchronously, one record per event.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3Model

from tests.integration.sources_support import SampleApp

JOURNAL = "album-journal"
BUCKET = "album-uploads"


@pytest.fixture(scope="module")
def album() -> Iterator[SampleApp]:
    app = SampleApp("buckets")
    try:
        yield app
    finally:
        app.stop()


def test_a_new_object_matching_the_filters_reaches_the_handler_in_s3s_shape(
    album: SampleApp,
) -> None:
    s3 = album.client("s3")
    body = b"jpeg bytes"
    s3.put_object(Bucket=BUCKET, Key="photos/summer day.jpg", Body=body)
    s3.put_object(Bucket=BUCKET, Key="photos/notes.txt", Body=b"no")  # suffix differs
    s3.put_object(Bucket=BUCKET, Key="drafts/winter.jpg", Body=b"no")  # prefix differs
    s3.put_object(Bucket=BUCKET, Key="photos/last.jpg", Body=b"last")
    entries = album.wait_for(JOURNAL, "on_photo", lambda found: len(found) >= 2)
    keys = sorted(e.context["key"] for e in entries)
    # Chalice's S3Event decodes the key; only the two matching objects were delivered.
    assert keys == ["photos/last.jpg", "photos/summer day.jpg"]
    (entry,) = [e for e in entries if e.context["key"] == "photos/summer day.jpg"]
    parse(event=entry.event, model=S3Model)  # Powertools' model of S3's event message
    (record,) = entry.event["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == "us-east-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["eventTime"])
    assert set(record) >= {"userIdentity", "requestParameters", "responseElements"}
    s3_part = record["s3"]
    assert s3_part["s3SchemaVersion"] == "1.0"
    assert s3_part["bucket"]["name"] == BUCKET
    assert s3_part["bucket"]["arn"] == f"arn:aws:s3:::{BUCKET}"
    assert "principalId" in s3_part["bucket"]["ownerIdentity"]
    obj = s3_part["object"]
    assert obj["key"] == "photos/summer+day.jpg"  # URL-encoded, as S3 sends it
    assert obj["size"] == len(body)
    assert obj["eTag"] == hashlib.md5(body).hexdigest()
    assert re.fullmatch(r"[0-9A-F]+", obj["sequencer"])
    assert entry.context["function_name"] == "photo-album-local-on_photo"
    assert entry.context["memory_limit_in_mb"] == 512
    assert 0 < entry.context["remaining_ms"] <= 60_000
    assert entry.shift == "wide"


def test_a_deleted_object_reaches_the_removal_handler_only(album: SampleApp) -> None:
    s3 = album.client("s3")
    s3.put_object(Bucket=BUCKET, Key="photos/old.jpg", Body=b"old")
    album.wait_for(
        JOURNAL, "on_photo", lambda found: "photos/old.jpg" in [e.context["key"] for e in found]
    )
    s3.delete_object(Bucket=BUCKET, Key="photos/old.jpg")
    (entry,) = album.wait_for(JOURNAL, "on_removed", lambda found: len(found) >= 1)
    parse(event=entry.event, model=S3Model)
    (record,) = entry.event["Records"]
    assert record["eventName"] == "ObjectRemoved:Delete"
    assert record["s3"]["object"]["key"] == "photos/old.jpg"
    assert "size" not in record["s3"]["object"]  # a removed object has no size
    assert entry.shift == ""  # on_removed has no LENS of its own
    # The removal did not reach on_photo (it names ObjectCreated only).
    photos = album.entries(JOURNAL, "on_photo")
    assert all(e.event["Records"][0]["eventName"].startswith("ObjectCreated") for e in photos)
