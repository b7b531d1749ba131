"""``chalice local --stage local`` as a Chalice user runs it, next to the local runtime.

Real processes, HTTP on loopback: ``chalice local`` serves the routes, ``python -m local
run`` holds the embedded AWS and runs the pipeline. The committed ``local`` stage points
``chalice local`` at the runtime's default AWS port; these tests give both processes free
ports instead (a copy of the project whose ``local`` stage names the runtime's port), so
parallel runs and a developer's own ``make run`` never clash.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.__main__ import parse
from local.embedded_aws import DEFAULT_AWS_PORT
from local.testing import LineProcess, clean_environment
from local_plugin.demo import call, wait_until_final
from tests.integration.test_local_runtime import ROOT, RuntimeProcess, _free_port

CHALICE = Path(sys.executable).with_name("chalice")
LOCAL_AWS_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


def _local_stage_env(project: Path = ROOT) -> dict[str, str]:
    config = json.loads((project / ".chalice" / "config.json").read_text())
    env: dict[str, str] = config["stages"]["local"]["environment_variables"]
    return env


def _project_with_endpoint(folder: Path, endpoint: str) -> Path:
    """This project, its ``local`` stage pointing at ``endpoint`` (nothing else changed)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["local"]["environment_variables"]["AWS_ENDPOINT_URL"] = endpoint
    (folder / ".chalice").mkdir(parents=True)
    (folder / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("app.py", "chalicelib"):
        (folder / name).symlink_to(ROOT / name)
    return folder


class ChaliceLocal(LineProcess):
    """``chalice local --stage local`` in a child process, with a shell's environment
    minus any AWS settings (as in a fresh terminal of a machine without AWS set up)."""

    def __init__(self, project: Path) -> None:
        self.port = _free_port()
        command = [str(CHALICE), "--project-dir", str(project), "local", "--stage", "local"]
        env = clean_environment({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        super().__init__([*command, "--port", str(self.port), "--no-autoreload"], project, env)
        self.url = self.wait_for(r"Serving on (http://\S+)", timeout=60).group(1)

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)


@pytest.fixture
def runtime() -> Iterator[tuple[RuntimeProcess, str]]:
    """``python -m local run`` on free ports: (process, its embedded AWS's URL)."""
    proc = RuntimeProcess()
    try:
        found = proc.wait_for(r"serving http://\S+ \(stage local, AWS at (http://\S+)\)")
        yield proc, found.group(1)
    finally:
        assert proc.stop() == 0


def _post(base: str, order_id: str, name: str, status: str) -> tuple[int, Any]:
    return call("POST", f"{base}/orders/{order_id}/events", {"name": name, "status": status})


def test_local_stage_points_chalice_local_at_the_runtimes_default_aws_port() -> None:
    env = _local_stage_env()
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{DEFAULT_AWS_PORT}"
    assert parse(["run"]).aws_port == DEFAULT_AWS_PORT
    assert all(env.get(key) for key in LOCAL_AWS_KEYS), "region and dummy credentials set"
    # `chalice local` takes Chalice's default port, so `make run` must not hold it.
    from chalice.cli import local as chalice_local

    chalice_port = next(p.default for p in chalice_local.params if p.name == "port")
    assert parse(["run"]).port != chalice_port


def test_chalice_local_next_to_the_runtime_records_a_result_that_becomes_an_invoice(
    runtime: tuple[RuntimeProcess, str], tmp_path: Path
) -> None:
    proc, endpoint = runtime
    server = ChaliceLocal(_project_with_endpoint(tmp_path, endpoint))
    try:
        assert _post(server.url, "cl-1", "Account Check", "passed")[0] == 201
        assert _post(server.url, "cl-1", "In Stock", "passed")[0] == 201
        view = wait_until_final(server.url, "cl-1", timeout=60)
        assert view["status"] == "invoiced", "\n".join(proc.lines + server.lines)
        assert view["invoice"]["invoiceId"].startswith("INV-")
    finally:
        server.stop()
    # The pipeline in the runtime reacted to writes it did not receive over its own API.
    proc.wait_for(r"\[order cl-1\] rule matched → invoice_processing")
    proc.wait_for(r"\[order cl-1\] handler done: \{'outcome': 'invoiced'")
    assert proc.count(r"\[http\] POST /orders/cl-1/") == 0


def test_chalice_local_without_the_runtime_answers_json_503_naming_the_endpoint(
    tmp_path: Path,
) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    server = ChaliceLocal(_project_with_endpoint(tmp_path, endpoint))
    try:
        expected = {
            "error": f"the local AWS endpoint at {endpoint} is not reachable; "
            "start it with `make run`"
        }
        assert _post(server.url, "cl-2", "In Stock", "passed") == (503, expected)
        assert call("GET", f"{server.url}/orders/cl-2") == (503, expected)
    finally:
        server.stop()
    assert not any("Traceback" in line for line in server.lines), "\n".join(server.lines)
    assert any('"error_type":"EndpointConnectionError"' in line for line in server.lines)


def test_runtime_refuses_an_aws_port_in_use_saying_which_flag_to_change() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = RuntimeProcess("--aws-port", str(port))
        assert proc.process.wait(timeout=60) == 2
    proc.wait_for(
        rf"local runtime did not start: the embedded AWS cannot listen on 127\.0\.0\.1:{port} "
        r".*--aws-port \(0 = any free port\)"
    )
