"""Resources come from what deploys them; a table the app names but nobody declares is
refused with one message that names it and the two ways to supply it.

Each test runs ``python -m local run --project-dir DIR`` in a real process (loopback).
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sources_support import APPS, SESSION, SampleApp
from tests.integration.test_local_runtime import ROOT, RuntimeProcess

WAYS = (
    r"Declare it in \.chalice/merge-template\.json \(an AWS::DynamoDB::Table with KeySchema "
    r"and AttributeDefinitions.*\), or create it yourself and run with --endpoint URL"
)


def _refused(*args: str) -> str:
    proc = RuntimeProcess(*args)
    assert proc.process.wait(timeout=120) == 2, "\n".join(proc.lines)
    proc.wait_for(r"local runtime did not start")
    (line,) = [line for line in proc.lines if "did not start" in line]
    return line


def test_a_table_the_stage_names_but_nothing_declares_stops_start_up() -> None:
    line = _refused("--project-dir", str(APPS / "missing_table"))
    assert re.search(
        r"local runtime did not start: table 'customers' \(TABLE_NAME in stage local\): "
        r"its key schema appears nowhere, so the runtime will not guess one\. " + WAYS,
        line,
    ), line


def test_a_stream_of_a_table_declared_nowhere_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        '{"version": "2.0", "app_name": "ghosts", "stages": {"local": {}}}'
    )
    (tmp_path / "app.py").write_text(
        "from chalice import Chalice\n"
        "app = Chalice(app_name='ghosts')\n"
        "STREAM = 'arn:aws:dynamodb:us-east-1:123456789012:table/ghosts/stream/x'\n"
        "@app.on_dynamodb_record(stream_arn=STREAM, name='haunt')\n"
        "def haunt(event):\n"
        "    pass\n"
    )
    line = _refused("--project-dir", str(tmp_path))
    assert "table 'ghosts' (on_dynamodb_record of haunt): its key schema appears nowhere" in line
    assert re.search(WAYS, line), line


@pytest.fixture
def endpoint() -> Iterator[str]:
    """An embedded AWS of its own (what --endpoint points at)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "local.motoserver", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    found = re.match(r"listening on (http://\S+)", server.stdout.readline())
    assert found, "the embedded AWS did not start"
    try:
        yield found.group(1)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=20)


def test_a_table_created_beforehand_on_the_endpoint_is_used_as_it_is(endpoint: str) -> None:
    dynamodb = SESSION.client("dynamodb", endpoint_url=endpoint)
    dynamodb.create_table(
        TableName="customers",
        KeySchema=[{"AttributeName": "CustomerId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "CustomerId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(
        TableName="customers", Item={"CustomerId": {"S": "c-1"}, "Name": {"S": "Ada"}}
    )
    proc = RuntimeProcess("--project-dir", str(APPS / "missing_table"), "--endpoint", endpoint)
    try:
        base = proc.wait_for(r"serving (http://\S+) ", 90).group(1)
        with urllib.request.urlopen(f"{base}/customers/c-1") as answer:
            assert answer.read() == b'{"CustomerId":"c-1","Name":"Ada"}'
        schema = dynamodb.describe_table(TableName="customers")["Table"]["KeySchema"]
        assert schema == [{"AttributeName": "CustomerId", "KeyType": "HASH"}]
    finally:
        assert proc.stop() == 0


def test_each_app_gets_its_own_tables_never_this_projects_schema() -> None:
    app = SampleApp("topics")
    try:
        dynamodb = app.client("dynamodb")
        assert dynamodb.list_tables()["TableNames"] == ["alert-notes"]
        keys = dynamodb.describe_table(TableName="alert-notes")["Table"]["KeySchema"]
        assert keys == [{"AttributeName": "entry", "KeyType": "HASH"}]
        app.proc.wait_for(r"topics ready: audit-trail, stock-alerts")
    finally:
        app.stop()


def test_what_the_runtime_does_not_run_is_named_in_one_line_and_named_arns_exist(
    tmp_path: Path,
) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        '{"version": "2.0", "app_name": "chat", "stages": {"local": {"environment_variables": '
        '{"REPORTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:chat-reports", '
        '"ARCHIVE": "arn:aws:s3:::chat-archive"}}}}'
    )
    (tmp_path / ".chalice" / "merge-template.json").write_text(
        '{"Resources": {"Take": {"Type": "AWS::Serverless::Function", "Properties": {'
        '"Events": {"TakeSqsEventSource": {"Properties": {"FilterCriteria": {"Filters": '
        '[{"Pattern": "{\\"body\\": [\\"x\\"]}"}]}}}}}}}}'
    )
    (tmp_path / "app.py").write_text(
        "from chalice import Chalice\n"
        "app = Chalice(app_name='chat')\n"
        "app.experimental_feature_flags.update(['WEBSOCKETS'])\n"
        "@app.on_ws_connect()\n"
        "def connect(event):\n"
        "    pass\n"
        "@app.on_ws_message()\n"
        "def message(event):\n"
        "    pass\n"
        "@app.on_sqs_message(queue='inbox', name='take')\n"
        "def take(event):\n"
        "    pass\n"
    )
    proc = RuntimeProcess("--project-dir", str(tmp_path))
    try:
        proc.wait_for(r"serving http://", 90)
        (line,) = [line for line in proc.lines if "not run by this runtime" in line]
        assert line.endswith(
            "not run by this runtime (their triggers never fire): on_ws_connect (connect), "
            "on_ws_message (message); not played locally: FilterCriteria of on_sqs_message take"
        ), line
        # The ARNs the stage names are resolved: the resources exist locally.
        proc.wait_for(r"topics ready: chat-reports$")
        proc.wait_for(r"buckets ready: chat-archive$")
        proc.wait_for(r"queues ready: inbox$")
    finally:
        assert proc.stop() == 0
