"""The local runtime runs each trigger with the settings the packaged stack deploys.

``local.template.ProjectSettings`` reads the decorators, ``.chalice/config.json`` and the
merge template; ``chalice package --merge-template`` builds the stack from the same
three. Here both are compared setting by setting, with Lambda's documented default where
the stack leaves a setting out (services-ddb-params; invocation-async-error-handling;
eb-rule-retry-policy), so a setting added to the template that the runtime ignores, or a
default the runtime gets wrong, fails here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pytest
from chalice.cli.factory import CLIFactory

from local.template import (
    ASYNC_DEFAULT_MAX_AGE_SECONDS,
    ASYNC_DEFAULT_RETRIES,
    SQS_DEFAULTS,
    STREAM_DEFAULTS,
    TARGET_DEFAULT_MAX_AGE_SECONDS,
    TARGET_DEFAULT_RETRIES,
    ProjectSettings,
    logical_id_of,
    referenced_id,
)
from tests.deployment.test_template import PROJECT_DIR, STAGE, package_dir, template

__all__ = ["package_dir", "template"]  # the packaged stack's fixtures


@pytest.fixture(scope="module")
def runtime_settings() -> ProjectSettings:
    import app as app_module

    config = CLIFactory(str(PROJECT_DIR), environ=dict(os.environ)).create_config_obj(
        chalice_stage_name=STAGE
    )
    return ProjectSettings.load(PROJECT_DIR, app_module.app, config)


def _functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_every_stream_trigger_runs_locally_with_the_packaged_settings(
    template: dict[str, Any], runtime_settings: ProjectSettings
) -> None:
    functions = _functions(template)
    packaged: dict[str, dict[str, Any]] = {}
    for name in runtime_settings.streams:
        events = functions[logical_id_of(name)]["Events"]
        (event,) = [e for e in events.values() if e["Type"] == "DynamoDB"]
        packaged[name] = event["Properties"]
    assert packaged, "the app has a stream trigger"
    for name, properties in packaged.items():
        local = runtime_settings.streams[name].as_properties()
        expected = {**STREAM_DEFAULTS, **properties}
        for setting in (
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "StartingPosition",
            "ParallelizationFactor",
            "BisectBatchOnFunctionError",
            "MaximumRetryAttempts",
            "MaximumRecordAgeInSeconds",
            "FunctionResponseTypes",
        ):
            assert local[setting] == expected[setting], (name, setting)
        destination = (expected.get("DestinationConfig") or {}).get("OnFailure", {})
        queue = referenced_id(destination.get("Destination"))
        local_queue = local["OnFailureQueue"]
        assert (queue is None) == (local_queue is None), (name, "OnFailure")
        if queue is not None:
            assert runtime_settings.queues[queue].name == local_queue
        filters = (expected.get("FilterCriteria") or {}).get("Filters", [])
        assert local["Filters"] == [json.loads(f["Pattern"]) for f in filters]


def test_every_function_runs_locally_with_its_packaged_timeout_and_memory(
    template: dict[str, Any], runtime_settings: ProjectSettings
) -> None:
    functions = _functions(template)
    for name, settings in runtime_settings.functions.items():
        properties = functions[logical_id_of(name)]
        assert settings.timeout_seconds == properties["Timeout"], name
        assert settings.memory_mb == properties["MemorySize"], name
        assert settings.reserved_concurrency == properties.get("ReservedConcurrentExecutions")


def test_asynchronous_targets_run_locally_with_the_packaged_retries_and_destinations(
    template: dict[str, Any], runtime_settings: ProjectSettings
) -> None:
    functions = _functions(template)
    invoke_configs = {
        referenced_id(resource["Properties"].get("FunctionName")): resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
    }
    for name, settings in runtime_settings.functions.items():
        properties = functions[logical_id_of(name)]
        config = {
            **(properties.get("EventInvokeConfig") or {}),
            **invoke_configs.get(logical_id_of(name), {}),
        }
        assert settings.invoke.maximum_retry_attempts == config.get(
            "MaximumRetryAttempts", ASYNC_DEFAULT_RETRIES
        ), name
        assert settings.invoke.maximum_event_age_seconds == config.get(
            "MaximumEventAgeInSeconds", ASYNC_DEFAULT_MAX_AGE_SECONDS
        ), name
        on_failure = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        assert (on_failure is None) == (settings.invoke.on_failure_queue is None), name
        for event in (properties.get("Events") or {}).values():
            if event["Type"] not in ("CloudWatchEvent", "EventBridgeRule", "Schedule"):
                continue
            own = event["Properties"]
            retry = own.get("RetryPolicy") or {}
            assert settings.target.maximum_retry_attempts == retry.get(
                "MaximumRetryAttempts", TARGET_DEFAULT_RETRIES
            ), name
            assert settings.target.maximum_event_age_seconds == retry.get(
                "MaximumEventAgeInSeconds", TARGET_DEFAULT_MAX_AGE_SECONDS
            ), name
            assert (own.get("DeadLetterConfig") is None) == (
                settings.target.dead_letter_queue is None
            ), name
            assert settings.target.enabled == (own.get("State", "ENABLED") == "ENABLED"), name


def test_every_queue_trigger_runs_locally_with_the_packaged_settings(
    template: dict[str, Any], runtime_settings: ProjectSettings
) -> None:
    functions = _functions(template)
    queue_triggers = runtime_settings.triggers.queues
    assert queue_triggers, "the app has an on_sqs_message trigger (stream_recovery)"
    for name, trigger in queue_triggers.items():
        events = functions[logical_id_of(name)]["Events"]
        (event,) = [e for e in events.values() if e["Type"] == "SQS"]
        expected = {**SQS_DEFAULTS, **event["Properties"]}
        local = trigger.as_properties()
        for setting in ("BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes"):
            assert local[setting] == expected[setting], (name, setting)
        queue = referenced_id(expected["Queue"])
        assert queue is not None, (name, "the packaged Queue names a template queue")
        assert local["Queue"] == runtime_settings.queues[queue].name, (name, "Queue")
