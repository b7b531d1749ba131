"""The stack's operations view: a CloudWatch dashboard, an archive of the aggregated
events and the X-Ray switch, as merge-template resources.

The dashboard is built from the same names the code emits (``observability.METRIC_NAMES``
in the namespace and ``service`` dimension Powertools writes them with), the functions'
own Lambda metrics and every queue of the stack, so a renamed metric or a new queue
cannot leave a blind spot (``tests/deployment`` asserts it).

Example::

    dashboard(functions, queues)   # {"Type": "AWS::CloudWatch::Dashboard", ...}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib.config import Settings
from chalicelib.observability import (
    DECISION_LATENCY,
    DEFAULT_NAMESPACE,
    EVENTS_RECEIVED,
    ORDERS_COMPLETED,
    ORDERS_PUBLISHED,
    ORDERS_TIMED_OUT,
    PUBLISH_FAILURES,
    PUBLISH_RETRIES,
    SERVICE,
)

DASHBOARD_ID = "OperationsDashboard"
ARCHIVE_ID = "AggregatedEventsArchive"
ARCHIVE_PARAMETER = "ArchiveRetentionDays"
HAS_ARCHIVE = "HasArchive"
TRACING_PARAMETER = "Tracing"
TRACING_ON = "TracingOn"
XRAY_WILDCARD_REASON = (
    "xray:PutTraceSegments/PutTelemetryRecords on * - X-Ray has no resource-level "
    "permissions; granted only while the stack's Tracing parameter is Active."
)
WIDTH = 12
HEIGHT = 6
# The counts an operator reads first, per minute; the rest of METRIC_NAMES follow.
HEADLINE = (EVENTS_RECEIVED, ORDERS_PUBLISHED, ORDERS_COMPLETED, ORDERS_TIMED_OUT)
PUBLISHING = (PUBLISH_RETRIES, PUBLISH_FAILURES)
LAMBDA_METRICS = (("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "p99"))


def _app_metric(name: str, **options: str) -> list[Any]:
    line: list[Any] = [DEFAULT_NAMESPACE, name, "service", SERVICE]
    return line + [options] if options else line


def _widget(title: str, metrics: list[list[Any]], region: str, stat: str = "Sum") -> dict[str, Any]:
    return {
        "type": "metric",
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": 60,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def widgets(
    metric_names: Sequence[str],
    function_names: Sequence[str],
    aggregator: str,
    queue_names: Sequence[str],
    region: str,
) -> list[dict[str, Any]]:
    """Every widget of the dashboard, for the given function and queue names."""
    others = [n for n in metric_names if n not in (*HEADLINE, *PUBLISHING, DECISION_LATENCY)]
    found = [
        _widget("Orders per minute", [_app_metric(n) for n in HEADLINE], region),
        _widget("Publishing", [_app_metric(n) for n in PUBLISHING], region),
        _widget(
            "Decision latency (last check to outcome, ms)",
            [_app_metric(DECISION_LATENCY, stat=s, label=s) for s in ("p50", "p99")],
            region,
            stat="p50",
        ),
        _widget("Other app metrics", [_app_metric(n) for n in others], region),
        _widget(
            "Aggregator IteratorAge (ms)",
            [["AWS/Lambda", "IteratorAge", "FunctionName", aggregator]],
            region,
            stat="Maximum",
        ),
    ]
    for metric, stat in LAMBDA_METRICS:
        lines: list[list[Any]] = [["AWS/Lambda", metric, "FunctionName", n] for n in function_names]
        found.append(_widget(f"Functions: {metric}", lines, region, stat=stat))
    depth: list[list[Any]] = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q] for q in queue_names
    ]
    found.append(
        _widget("Queues: messages waiting (DLQs, failure destinations)", depth, region, "Maximum")
    )
    for index, widget in enumerate(found):
        widget["x"] = (index % 2) * WIDTH
        widget["y"] = (index // 2) * HEIGHT
    return found


def dashboard(
    metric_names: Sequence[str], function_suffixes: Sequence[str], queue_ids: Sequence[str]
) -> dict[str, Any]:
    """The stack's dashboard: names are CloudFormation substitutions (``${QueueId}``
    stands for each queue's name)."""
    functions = ["${AWS::StackName}-" + suffix for suffix in function_suffixes]
    body = json.dumps(
        {
            "widgets": widgets(
                metric_names,
                functions,
                "${AWS::StackName}-aggregator",
                [f"${{{q}}}" for q in queue_ids],
                "${AWS::Region}",
            )
        }
    )
    names = {q: {"Fn::GetAtt": [q, "QueueName"]} for q in queue_ids}
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": {"Fn::Sub": "${AWS::StackName}"},
            "DashboardBody": {"Fn::Sub": [body, names]},
        },
    }


def archive(settings: Settings) -> dict[str, Any]:
    """An archive of the aggregated events on the default bus (replay with AWS's own
    StartReplay). Retention 0 means *no archive*: EventBridge itself reads 0 as
    'keep for ever', so the parameter's 0 removes the resource instead."""
    return {
        "Type": "AWS::Events::Archive",
        "Condition": HAS_ARCHIVE,
        "Properties": {
            "Description": "The aggregated events, for replay.",
            "SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
                f":event-bus/{settings.event_bus_name}"
            },
            "EventPattern": {
                "source": [settings.event_source],
                "detail-type": [settings.detail_type],
            },
            "RetentionDays": {"Ref": ARCHIVE_PARAMETER},
        },
    }


def parameters() -> dict[str, Any]:
    return {
        ARCHIVE_PARAMETER: {
            "Type": "Number",
            "Default": 7,
            "MinValue": 0,
            "Description": "Days the archive keeps the aggregated events; 0: no archive.",
        },
        TRACING_PARAMETER: {
            "Type": "String",
            "Default": "PassThrough",
            "AllowedValues": ["Active", "PassThrough"],
            "Description": "X-Ray tracing of every function: Active turns it on.",
        },
    }


def conditions() -> dict[str, Any]:
    return {
        HAS_ARCHIVE: {"Fn::Not": [{"Fn::Equals": [{"Ref": ARCHIVE_PARAMETER}, 0]}]},
        TRACING_ON: {"Fn::Equals": [{"Ref": TRACING_PARAMETER}, "Active"]},
    }


def tracing_statement() -> dict[str, Any]:
    """X-Ray's write calls, granted only while tracing is on. X-Ray has no resource-level
    permissions, so "*" is the only resource that grants them."""
    return {
        "Fn::If": [
            TRACING_ON,
            {
                "Sid": "WriteTraces",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": ["*"],
            },
            {"Ref": "AWS::NoValue"},
        ]
    }
