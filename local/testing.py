"""The local runtime as a child process, for an app's own integration tests and benchmarks.

:class:`RuntimeProcess` starts ``python -m local run`` on free ports, with the shell's
environment minus any AWS or Powertools settings (a fresh terminal on a machine without
AWS set up), and keeps every line it prints. A test waits for the lines it cares about
and talks to the URLs they name. :class:`LineProcess` does the same for any command
(``chalice local``, say).

Example::

    runtime = RuntimeProcess("--project-dir", "path/to/app")
    found = runtime.wait_for(r"serving (http://\\S+) \\(stage local, AWS at (http://\\S+)\\)")
    api, aws = found.group(1), found.group(2)
    ...
    assert runtime.stop() == 0
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``AWS_*`` and ``POWERTOOLS*``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS"))}
    env.update(extra or {})
    return env


class LineProcess:
    """A child process whose standard output and error are kept line by line."""

    def __init__(self, command: Sequence[str], cwd: Path | None, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first line matching ``pattern``; AssertionError (with the last lines) if
        none came within ``timeout`` seconds or the process ended without one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines[-40:]))

    def count(self, pattern: str) -> int:
        return sum(1 for line in list(self.lines) if re.search(pattern, line))

    def last(self, pattern: str) -> re.Match[str] | None:
        """The last line so far matching ``pattern``."""
        for line in reversed(list(self.lines)):
            found = re.search(pattern, line)
            if found:
                return found
        return None

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C, then its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


class RuntimeProcess(LineProcess):
    """``python -m local run`` with ``args``: its API, embedded AWS and Lambda API on free
    ports and the web UI off, unless ``args`` say otherwise (later flags win)."""

    def __init__(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        ports = ["--port", str(free_port()), "--aws-port", "0", "--ui-port", "0"]
        ports += ["--lambda-port", "0"]
        command = [sys.executable, "-m", "local", "run", *ports, *args]
        super().__init__(command, cwd or Path.cwd(), clean_environment(env))
