"""moto's server in its own process, with narrow fixes the runtime needs.

``python -m local.motoserver [--port N]`` starts moto's server
(:class:`local.embedded_aws.EmbeddedAws`) on 127.0.0.1, prints ``listening on
http://127.0.0.1:PORT`` (or ``error: …`` when the port is taken) and serves until its
standard input closes (so it never outlives the runtime that started it). In its own process it
has its own interpreter lock: the app's handlers and moto no longer share one.

Three fixes bring moto's DynamoDB closer to DynamoDB (:func:`patch_moto`), verified on
the moto version pinned in ``requirements-dev.txt`` (:data:`VERIFIED_MOTO`);
:func:`patch_moto` refuses to start on another version, so an upgrade cannot drop them
silently:

* **Query reads one partition.** moto's ``Table.query`` on the base table walks every
  item of the table to find one partition key's items (Queries per second fall with
  table size). DynamoDB reads only that partition. During a base-table Query,
  ``Table.all_items`` returns only the queried partition's items; results are the same.
* **Stream records as DynamoDB writes them.** "Whenever an application creates, updates,
  or deletes items in the table, DynamoDB Streams writes a stream record" (DynamoDB
  developer guide, Change data capture for DynamoDB Streams): one record per change, and
  none for a write that changes nothing. moto writes two INSERT records for an UpdateItem
  that creates its item (the bare key item it creates first, then the update) and a
  MODIFY for a put or update that leaves the item as it was. The first of those two
  INSERTs and the records of unchanged items are not written.
* **Atomic DynamoDB calls.** moto's threaded server runs requests side by side and can
  lose concurrent updates of one item; DynamoDB applies each write atomically. Every
  DynamoDB and DynamoDB Streams request is served under one lock.

And seven that change only how fast moto answers, not what (measured in
``bench/results.md``, local section; ``tests/unit/test_motoserver.py`` checks the
answers):

* **The list of moto's services is read once.** moto's server finds the backend of
  every request by listing its own package directory (``list_of_moto_modules``: one
  ``listdir`` and ~200 ``isdir`` calls per request, under a global lock).
* **EventBridge input paths are parsed once.** For every event and every target, moto's
  ``EventTemplateParser`` builds a new JSONPath parser (PLY's yacc tables) for each of
  the eight default input paths. Parsed paths are cached; ``find`` does not change them.
* **SQS reads a queue's retention period directly.** For every message it receives,
  moto computed all of the queue's attributes (which counts the queue's messages) only to
  read ``MessageRetentionPeriod``: quadratic in the queue's depth.
* **SQS sends without counting the queue.** For every message it sends (and so for every
  event EventBridge delivers to a queue), moto computed all of the queue's attributes,
  counting its messages three times with a clock read per message, only to read
  ``ContentBasedDeduplication``. While a message is sent, a queue's attributes are just
  that one (FIFO queues) or none (standard queues, which have no such attribute).
* **DynamoDB items are serialized directly.** moto writes every response through a
  generic serializer that walks the botocore model: for each attribute value of each
  item it tries all ten members of ``AttributeValue`` through an alias-resolving picker
  (a quarter of moto's CPU under load). Maps of ``AttributeValue`` (items, keys, stream
  images) are written straight from moto's ``{type: value}`` dicts, with the same wire
  encoding (binary as base64, ``BOOL`` as moto's serializer reads it).
* **An update expression's tree is walked with its processors' node types looked up
  once.** Each of the ten validators that walk an UpdateItem's expression tree rebuilt
  its map of node types (and the tuple of them) at every node it visited.
* **A handler's method names are listed once per class.** moto listed them with
  ``inspect.getmembers`` on every request to check the action exists.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

VERIFIED_MOTO = "5.2.1"
_scope = threading.local()
_dynamodb_lock = threading.RLock()


def patch_moto() -> None:
    """Apply the fixes; raises if moto is not the verified version."""
    import moto
    from moto.core.responses import BaseResponse
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    if moto.__version__ != VERIFIED_MOTO:
        raise RuntimeError(
            f"local.motoserver's fixes were verified on moto {VERIFIED_MOTO}, not "
            f"{moto.__version__}: check Table.query/all_items and call_action, then update"
        )
    if getattr(Table.query, "_local_patched", False):
        return
    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        _scope.partition = (self, hash_key) if index_name is None else None
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _scope.partition = None

    def all_items(self: Table) -> Any:
        partition = getattr(_scope, "partition", None)
        if partition is not None and partition[0] is self and self.range_key_attr:
            return list(self.items.get(partition[1], {}).values())
        return original_all_items(self)

    query._local_patched = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original_call = handler.call_action

        def call_action(self: BaseResponse, _original: Any = original_call) -> Any:
            with _dynamodb_lock:
                return _original(self)

        handler.call_action = call_action  # type: ignore[method-assign]
    _patch_stream_records()
    _patch_service_list()
    _patch_input_paths()
    _patch_sqs_retention()
    _patch_sqs_send()
    _patch_attribute_maps()
    _patch_method_names()
    _patch_tree_walks()


def _flagged(flag: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, with ``_scope.<flag>`` true on this thread while it runs."""

    def call(*args: Any, **kwargs: Any) -> Any:
        setattr(_scope, flag, True)
        try:
            return original(*args, **kwargs)
        finally:
            setattr(_scope, flag, False)

    return call


def _patch_stream_records() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard, Table

    original_add = StreamShard.add
    original_put = Table.put_item
    original_update = DynamoDBBackend.update_item

    def add(self: StreamShard, old: Any, new: Any) -> None:
        if getattr(_scope, "creating", False):
            return  # the bare key item UpdateItem creates; its update writes the record
        if old is not None and new is not None and old == new:
            return  # nothing changed: DynamoDB writes no record
        original_add(self, old, new)

    def put_item(self: Table, *args: Any, **kwargs: Any) -> Any:
        _scope.creating = getattr(_scope, "updating", False)
        try:
            return original_put(self, *args, **kwargs)
        finally:
            _scope.creating = False

    StreamShard.add = add  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _flagged("updating", original_update)  # type: ignore[method-assign]


def _patch_service_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _patch_input_paths() -> None:
    import jsonpath_ng.ext

    parse: Any = jsonpath_ng.ext.parse  # type: ignore[attr-defined]
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(parse)  # type: ignore[attr-defined]


def _patch_sqs_retention() -> None:
    from moto.core import utils
    from moto.sqs.models import Message, SQSBackend

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        queue: Any = self.get_queue(queue_name)
        retain_until = queue.message_retention_period + message.sent_timestamp / 1000  # type: ignore[operator]
        return bool(retain_until > utils.unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def _patch_sqs_send() -> None:
    from moto.sqs.models import Queue, SQSBackend

    every_attribute = Queue.attributes.fget  # type: ignore[attr-defined]
    original_send = SQSBackend.send_message

    def attributes(self: Queue) -> dict[str, Any]:
        if not getattr(_scope, "sending", False):
            return every_attribute(self)  # type: ignore[no-any-return]
        if not self.fifo_queue:
            return {}
        value: Any = self.content_based_deduplication  # type: ignore[attr-defined]
        return {
            "ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value
        }

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = _flagged("sending", original_send)  # type: ignore[method-assign]


_ATTRIBUTE_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


class _NotPlain(Exception):
    """An attribute value the direct path leaves to moto's own serializer."""


def _attribute_value(value: Any, base64: Callable[[Any], str]) -> dict[str, Any]:
    """One DynamoDB ``AttributeValue`` in its wire form, from moto's ``{type: value}``."""
    if not isinstance(value, dict) or len(value) != 1:
        raise _NotPlain
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        if not isinstance(inner, str):
            raise _NotPlain
        return {kind: inner}
    if kind in ("SS", "NS"):
        return {kind: [str(v) for v in inner]}
    if kind in ("BOOL", "NULL"):
        return {kind: inner in (True, "True", "true")}
    if kind == "B":
        return {kind: base64(inner)}
    if kind == "BS":
        return {kind: [base64(v) for v in inner]}
    if kind == "M":
        return {kind: {k: _attribute_value(v, base64) for k, v in inner.items()}}
    if kind == "L":
        return {kind: [_attribute_value(v, base64) for v in inner]}
    raise _NotPlain


def _patch_attribute_maps() -> None:
    from moto.core.serialize import BaseJSONSerializer

    original_map = BaseJSONSerializer._serialize_type_map

    def serialize_map(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        service = self.operation_model.service_model.service_name
        if service in _ATTRIBUTE_SERVICES and shape.value.name == "AttributeValue":
            try:
                plain = {k: _attribute_value(v, self._base64) for k, v in value.items()}
            except (_NotPlain, AttributeError, TypeError, ValueError):
                pass
            else:
                self._default_serialize(serialized, plain, shape, key)
                return
        original_map(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_map = serialize_map  # type: ignore[method-assign]


def _patch_tree_walks() -> None:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]

    def processing_map(self: Any) -> dict[type, Callable[[Any], Any]]:
        found: dict[type, Callable[[Any], Any]] | None = self.__dict__.get("_local_map")
        if found is None:
            found = self.__dict__["_local_map"] = self._processing_map()
        return found

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        found: tuple[type, ...] | None = self.__dict__.get("_local_nodes")
        if found is None:
            found = self.__dict__["_local_nodes"] = tuple(processing_map(self))
        return found

    def process(self: Any, node: Any) -> Any:
        for node_type, processor in processing_map(self).items():
            if isinstance(node, node_type):
                return processor(node)
        return None

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process


def _patch_method_names() -> None:
    from moto.core import responses, utils

    # responses.py imported the function by name: the cached one replaces it there.
    responses.method_names_from_class = functools.cache(utils.method_names_from_class)  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.motoserver")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    patch_moto()
    import logging

    from local.embedded_aws import EmbeddedAws, PortInUse

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    logging.getLogger("waitress").setLevel(logging.ERROR)  # no "task queue depth" lines
    try:
        server = EmbeddedAws("127.0.0.1", args.port)
    except PortInUse as err:
        sys.stdout.write(f"error: {err}\n")
        sys.stdout.flush()
        return 2
    sys.stdout.write(f"listening on {server.url}\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()  # until the runtime closes it (or exits)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
