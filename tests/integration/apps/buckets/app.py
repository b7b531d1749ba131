"""Photos uploaded to an S3 bucket; each S3 event a handler receives goes to a journal.

``on_photo`` wants new ``.jpg`` objects under ``photos/``; ``on_removed`` every deletion.
The bucket is named by nothing but these decorators.
"""

from __future__ import annotations

from chalice.app import Chalice, S3Event

from chalicelib import album  # type: ignore[attr-defined]  # this app's own (mypy sees the project's)

app = Chalice(app_name="photo-album")


@app.on_s3_event(
    bucket="album-uploads",
    events=["s3:ObjectCreated:*"],
    prefix="photos/",
    suffix=".jpg",
    name="on_photo",
)
def on_photo(event: S3Event) -> None:
    album.remember("on_photo", event.to_dict(), event.context, event.key)


@app.on_s3_event(bucket="album-uploads", events=["s3:ObjectRemoved:*"], name="on_removed")
def on_removed(event: S3Event) -> None:
    album.remember("on_removed", event.to_dict(), event.context, event.key)
