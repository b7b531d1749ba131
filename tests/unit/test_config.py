"""Settings from environment variables (``chalicelib.config``): pure Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.config import (
    DEFAULT_DETAIL_TYPE,
    DEFAULT_EVENT_SOURCE,
    DEFAULT_REQUIRED_CHECKS,
    DEFAULT_TABLE_NAME,
    RESERVED_DETAIL_KEYS,
    ConfigurationError,
    Settings,
    load_settings,
)

CHALICE_CONFIG = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"


def test_empty_environment_gives_the_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.table_name == DEFAULT_TABLE_NAME
    assert settings.event_source == DEFAULT_EVENT_SOURCE
    assert settings.detail_type == DEFAULT_DETAIL_TYPE
    assert settings.required_checks == DEFAULT_REQUIRED_CHECKS
    assert settings.event_bus_name == "default"
    assert settings.order_timeout_seconds == 900
    assert settings.pending_shards == 4
    assert settings.publish_attempts == 4
    assert settings.api_auth == "iam"


def test_empty_strings_fall_back_to_the_defaults() -> None:
    blank = {
        key: ""
        for key in (
            "TABLE_NAME",
            "EVENT_BUS_NAME",
            "EVENT_SOURCE",
            "EVENT_DETAIL_TYPE",
            "REQUIRED_CHECKS",
            "ORDER_TIMEOUT_SECONDS",
            "PENDING_SHARDS",
            "PUBLISH_ATTEMPTS",
            "API_AUTH",
            "STREAM_FAILURE_QUEUE",
            "NOTIFY_LEASE_SECONDS",
            "SWEEP_BUDGET_SECONDS",
        )
    }
    assert load_settings(blank) == Settings()


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "TABLE_NAME": "t",
            "EVENTS_STREAM_ARN": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x",
            "EVENT_BUS_NAME": "default",
            "EVENT_SOURCE": "shop",
            "EVENT_DETAIL_TYPE": "Checked",
            "REQUIRED_CHECKS": "A,B",
            "ORDER_TIMEOUT_SECONDS": "60",
            "PENDING_SHARDS": "8",
            "PUBLISH_ATTEMPTS": "2",
            "API_AUTH": "none",
            "STREAM_FAILURE_QUEUE": "q",
            "NOTIFY_LEASE_SECONDS": "90",
            "SWEEP_BUDGET_SECONDS": "30",
        }
    )
    assert settings == Settings(
        table_name="t",
        stream_arn="arn:aws:dynamodb:eu-west-1:1:table/t/stream/x",
        event_bus_name="default",
        event_source="shop",
        detail_type="Checked",
        required_checks=("A", "B"),
        order_timeout_seconds=60,
        pending_shards=8,
        publish_attempts=2,
        api_auth="none",
        stream_failure_queue="q",
        notify_lease_seconds=90,
        sweep_budget_seconds=30,
    )


def test_the_failure_queue_name_derives_from_the_table() -> None:
    assert load_settings({"TABLE_NAME": "t"}).stream_failure_queue == "t-stream-failures"


def test_a_bus_other_than_default_is_refused_saying_why() -> None:
    # Chalice's on_cw_event rules are on the default bus: events put elsewhere match none.
    with pytest.raises(ConfigurationError, match="default bus"):
        load_settings({"EVENT_BUS_NAME": "orders"})


def test_required_checks_as_a_json_list() -> None:
    raw = json.dumps(["Account Check", "In Stock", "Fraud Check"])
    checks = load_settings({"REQUIRED_CHECKS": raw}).required_checks
    assert checks == ("Account Check", "In Stock", "Fraud Check")


def test_required_checks_as_a_comma_separated_list_are_trimmed() -> None:
    checks = load_settings({"REQUIRED_CHECKS": " Account Check , In Stock ,"}).required_checks
    assert checks == ("Account Check", "In Stock")


def test_required_checks_are_deduplicated_keeping_the_first_order() -> None:
    raw = '["In Stock", "Account Check", " In Stock"]'
    assert load_settings({"REQUIRED_CHECKS": raw}).required_checks == (
        "In Stock",
        "Account Check",
    )


@pytest.mark.parametrize("raw", [",", " , ", "[]", '["  "]'])
def test_required_checks_naming_no_check_are_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="names no check"):
        load_settings({"REQUIRED_CHECKS": raw})


@pytest.mark.parametrize("raw", ['["a", 1]', '[["a"]]', "[null]"])
def test_required_checks_that_are_not_strings_are_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="list of names"):
        load_settings({"REQUIRED_CHECKS": raw})


@pytest.mark.parametrize(
    "name",
    ["#order", "$or", "-x", ".x", "x" * 65, "a/b", "a:b", "é", "a\tb", "a\nb"],
)
def test_check_names_outside_the_pattern_are_refused(name: str) -> None:
    raw = json.dumps(["In Stock", name])
    with pytest.raises(ConfigurationError, match="must match"):
        load_settings({"REQUIRED_CHECKS": raw})


@pytest.mark.parametrize("name", sorted(RESERVED_DETAIL_KEYS))
def test_check_names_that_clash_with_detail_keys_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="must match"):
        load_settings({"REQUIRED_CHECKS": f"In Stock,{name}"})


def test_check_name_of_64_characters_is_accepted() -> None:
    name = "A" + "b" * 63
    assert load_settings({"REQUIRED_CHECKS": name}).required_checks == (name,)


def test_required_checks_that_are_not_valid_json_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        load_settings({"REQUIRED_CHECKS": '["Account Check", "In Stock"'})


@pytest.mark.parametrize("key", ["ORDER_TIMEOUT_SECONDS", "PENDING_SHARDS", "PUBLISH_ATTEMPTS"])
@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "ten", "1e3"])
def test_counts_must_be_positive_whole_numbers(key: str, raw: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        load_settings({key: raw})


def test_count_of_one_is_accepted() -> None:
    assert load_settings({"PENDING_SHARDS": "1"}).pending_shards == 1


@pytest.mark.parametrize("raw", ["IAM", "None", "cognito", "off", "true"])
def test_api_auth_must_be_iam_or_none(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="API_AUTH"):
        load_settings({"API_AUTH": raw})


@pytest.mark.parametrize("raw", ["iam", "none"])
def test_api_auth_accepts_iam_and_none(raw: str) -> None:
    assert load_settings({"API_AUTH": raw}).api_auth == raw


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)


def test_every_stage_of_the_chalice_config_loads() -> None:
    config = json.loads(CHALICE_CONFIG.read_text())
    shared = config.get("environment_variables", {})
    for name, stage in config["stages"].items():
        environ = {**shared, **stage.get("environment_variables", {})}
        settings = load_settings(environ)
        assert settings.required_checks == DEFAULT_REQUIRED_CHECKS, name
        assert settings.table_name.endswith(name), name
