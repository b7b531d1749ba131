"""The runtime's web UI in a real browser (headless Chromium), against a real runtime.

One ``python -m local run`` (loopback, free ports, the web UI on its own port) and one
browser serve the module. Orders go in through the app's HTTP API, as a user sends them;
what the page shows is read from the DOM. Every wait has a timeout; nothing asserts how
long something took. The board and a timeline are screenshotted; with
``UPDATE_SCREENSHOTS=1`` they replace docs/ui-board.png and docs/ui-timeline.png (linked
from the README), otherwise they go to pytest's temporary folder, so a test run leaves the
tree clean.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ops_support import TABLE, aws_client, post, run_ops, wait_for_view
from tests.integration.test_local_runtime import ROOT, RuntimeProcess, _free_port

DOCS = ROOT / "docs"


def screenshot(browser: Any, name: str, tmp_path: Path) -> None:
    """Save the page as ``name``: into docs/ when asked to refresh them, else into tmp."""
    folder = DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    assert browser.save_screenshot(str(folder / name))


# The promise: an order posted through the API is on the board within 2 s.
APPEARS_WITHIN = 2.0
# The pipeline itself (stream batch, rule, handler) on a loaded machine.
SETTLES_WITHIN = 90.0


@dataclass(frozen=True)
class Runtime:
    proc: RuntimeProcess
    api: str
    aws: str
    ui: str


@pytest.fixture(scope="module")
def runtime(browser: Any) -> Iterator[Runtime]:
    proc = RuntimeProcess("--ui-port", str(_free_port()), "--max-workers", "2")
    try:
        found = proc.wait_for(r"serving (http://\S+) \(stage local, AWS at (http://\S+)\)", 60)
        ui = proc.wait_for(r"web UI at (http://\S+)").group(1)
        yield Runtime(proc, found.group(1), found.group(2), ui)
    finally:
        assert proc.stop() == 0


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = SETTLES_WITHIN) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_tab(driver: Any, key: str) -> None:
    (button,) = css(driver, f'nav button[data-tab="{key}"]')
    button.click()
    wait(driver, lambda d: "active" in (button.get_attribute("class") or ""), 10)


def card_column(driver: Any, order_id: str) -> str | None:
    """The board column an order's card is in (read in one step: the page redraws)."""
    column: str | None = driver.execute_script(
        "const card = document.querySelector(`.card[data-key='${arguments[0]}']`);"
        "return card ? card.closest('.column').dataset.column : null;",
        order_id,
    )
    return column


def click(driver: Any, selector: str) -> None:
    driver.execute_script("document.querySelector(arguments[0]).click()", selector)


def texts(driver: Any, selector: str) -> list[str]:
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", selector
    )
    return found


def test_the_ui_loads_with_no_console_errors(browser: Any, runtime: Runtime) -> None:
    browser.get(runtime.ui)
    wait(browser, lambda d: css(d, 'nav button[data-tab="view:orders"].active'), 30)
    wait(browser, lambda d: len(css(d, "#board .column")) == 6, 30)
    for key in ("activity", "flow", "streams", "patterns", "view:orders"):
        open_tab(browser, key)
    assert console_errors(browser) == []


def test_orders_posted_through_the_api_appear_on_the_board(
    browser: Any, runtime: Runtime, tmp_path: Path
) -> None:
    post(runtime.api, "web-ok", "Account Check", "passed")
    post(runtime.api, "web-ok", "In Stock", "passed")
    post(runtime.api, "web-bad", "Account Check", "failed", reason="no credit")
    post(runtime.api, "web-bad", "In Stock", "passed")
    post(runtime.api, "web-wait", "Account Check", "passed")
    orders = ("web-ok", "web-bad", "web-wait")
    wait(browser, lambda d: all(card_column(d, o) for o in orders), APPEARS_WITHIN)

    wait(browser, lambda d: card_column(d, "web-ok") == "invoiced")
    wait(browser, lambda d: card_column(d, "web-bad") == "rejected")
    assert card_column(browser, "web-wait") == "pending"
    assert texts(browser, '.card[data-key="web-bad"] .pill') == ["Account Check", "In Stock"]
    assert texts(browser, '.card[data-key="web-bad"] .pill.s-failed') == ["Account Check"]
    screenshot(browser, "ui-board.png", tmp_path)


def test_clicking_an_order_shows_its_timeline_in_the_right_order(
    browser: Any, runtime: Runtime, tmp_path: Path
) -> None:
    wait_for_view(runtime.api, "web-ok", lambda v: v.get("notified") is True, SETTLES_WITHIN)
    wait(browser, lambda d: card_column(d, "web-ok") == "invoiced")
    click(browser, '.card[data-key="web-ok"]')
    read_events = (
        "return [...document.querySelectorAll('#timeline-entries li')].map((e) => e.dataset.event)"
    )
    wait(browser, lambda d: d.execute_script(read_events)[-1:] == ["customer-told"])
    events = browser.execute_script(read_events)
    times = texts(browser, "#timeline-entries li .iso")
    # No "opened": an order has no order record before its outcome (deadline buckets).
    assert events == ["check-result", "check-result", "outcome", "customer-told"]
    # The same story as `python -m ops inspect`, in its order.
    story = run_ops("--endpoint", runtime.aws, "--json", "inspect", "web-ok").json
    assert events == [entry["event"] for entry in story["timeline"]]
    assert times == [entry["at"] for entry in story["timeline"]] == sorted(times)
    assert texts(browser, "#timeline-state") == ["invoiced"]
    screenshot(browser, "ui-timeline.png", tmp_path)
    click(browser, "#timeline-close")


def test_a_parked_record_is_redriven_from_the_ui(browser: Any, runtime: Runtime) -> None:
    dynamodb = aws_client("dynamodb", runtime.aws)
    # Another writer corrupted the order's own record: the aggregator parks the order.
    corrupt = {"OrderID": {"S": "web-parked"}, "EventName": {"S": "#order"}}
    dynamodb.put_item(TableName=TABLE, Item={**corrupt, "Deadline": {"S": "soon"}})
    post(runtime.api, "web-parked", "Account Check", "passed")
    post(runtime.api, "web-parked", "In Stock", "passed")
    wait_for_view(
        runtime.api,
        "web-parked",
        lambda v: v.get("deadLettered") == "corrupt-item",
        SETTLES_WITHIN,
    )
    dynamodb.delete_item(TableName=TABLE, Key=corrupt)  # the operator repairs it

    open_tab(browser, "streams")
    selector = '#parked .parked[data-id="web-parked"]'
    wait(browser, lambda d: texts(d, selector))
    assert "corrupt-item" in texts(browser, selector)[0]
    click(browser, f"{selector} button.redrive")
    wait(browser, lambda d: "redriven:" in texts(d, "#redrive-result")[0])
    assert "order web-parked: published" in texts(browser, "#redrive-result")[0]
    wait(browser, lambda d: not texts(d, selector))
    done = wait_for_view(runtime.api, "web-parked", lambda v: v.get("notified") is True)
    assert done["status"] == "invoiced" and "deadLettered" not in done


def test_the_sandbox_reports_a_match_a_non_match_and_an_invalid_pattern(
    browser: Any, runtime: Runtime
) -> None:
    open_tab(browser, "patterns")
    event = browser.find_element("id", "event")

    def run(pattern: str | None = None, rule: str | None = None) -> tuple[str, str]:
        if rule is not None:
            click(browser, f'#rules li[data-rule="{rule}"] button')
        else:
            browser.execute_script(
                "document.getElementById('pattern').value = arguments[0]", pattern
            )
            browser.find_element("id", "test-button").click()
        result = browser.find_element("id", "pattern-result")
        wait(browser, lambda d: result.get_attribute("data-outcome"), 10)
        outcome, text = result.get_attribute("data-outcome"), result.text
        browser.execute_script("arguments[0].removeAttribute('data-outcome')", result)
        return outcome, text

    approved = (
        '{"version": "0", "id": "e1", "detail-type": "Order Checks Aggregated", '
        '"source": "event-aggregator", "account": "123456789012", '
        '"time": "2026-01-31T12:00:00Z", "region": "us-east-1", "resources": [], '
        '"detail": {"OrderID": "7", "status": "approved"}}'
    )
    browser.execute_script("arguments[0].value = arguments[1]", event, approved)
    assert run(rule="invoice_processing")[0] == "match"
    assert run(rule="problem_handler")[0] == "no-match"
    outcome, text = run(pattern='{"source": "event-aggregator"}')
    assert outcome == "error"
    assert text == (
        "InvalidEventPatternException: Event pattern is not valid. "
        'Reason: "source" must be an object or an array'
    )
    # Only the invalid pattern's 400 (bad input is a 4xx) may be in the console; no
    # script error.
    logged = [e["message"] for e in console_errors(browser)]
    assert [m for m in logged if "/api/pattern" not in m or "status of 400" not in m] == []
