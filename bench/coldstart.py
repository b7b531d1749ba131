"""Cold start: what ``import app`` costs a fresh interpreter, next to ``import boto3``.

Each measurement is a new ``python -c`` process (the app's environment set to dummy
values), the kinds interleaved so they share the machine's noise: import time by
``time.perf_counter`` (wall) and ``time.process_time`` (CPU, less sensitive to a busy
machine) around the import, peak RSS (``VmHWM``) after it, and, in
separate runs, the peak of Python allocations by ``tracemalloc``. ``-X importtime``
ranks the modules. The deployment zip is read if ``make package`` has built it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.env import ROOT, subprocess_env

RUNS = 11
TRACEMALLOC_RUNS = 3
IMPORTTIME_RUNS = 3
ZIP = ROOT / "build" / "package" / "deployment.zip"
TARGETS = {"app": "import app", "boto3": "import boto3", "bare": "pass"}

# Peak RSS from /proc (VmHWM starts afresh at exec); getrusage's ru_maxrss would carry
# over the parent's high-water mark through fork and exec.
_TIMED = """
import json, resource, time
begin, cpu_begin = time.perf_counter(), time.process_time()
{statement}
seconds, cpu = time.perf_counter() - begin, time.process_time() - cpu_begin
try:
    with open("/proc/self/status") as status:
        rss = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu, "maxrss_kb": rss}}))
"""

_TRACED = """
import json, tracemalloc
tracemalloc.start()
{statement}
print(json.dumps({{"peak_bytes": tracemalloc.get_traced_memory()[1]}}))
"""


@dataclass(frozen=True)
class Sample:
    seconds: list[float]
    cpu_seconds: list[float]
    maxrss_kb: list[int]
    traced_peak: list[int]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu_seconds(self) -> float:
        return statistics.median(self.cpu_seconds)

    @property
    def median_maxrss_kb(self) -> float:
        return statistics.median(self.maxrss_kb)

    @property
    def median_traced_peak(self) -> float:
        return statistics.median(self.traced_peak) if self.traced_peak else 0.0


@dataclass(frozen=True)
class ImportCost:
    module: str
    self_ms: float
    cumulative_ms: float
    depth: int


@dataclass(frozen=True)
class ZipInfo:
    path: str
    compressed: int
    uncompressed: int
    files: int
    built: str
    largest: list[tuple[str, int]]


@dataclass
class ColdStartResults:
    samples: dict[str, Sample]
    imports: list[ImportCost]
    app_modules_ms: dict[str, float]
    zip: ZipInfo | None
    runs: int
    seconds: float


def _python(code: str, extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *extra, "-c", code],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    )


def _import_costs() -> list[ImportCost]:
    """``-X importtime`` of ``import app``: median per module over a few runs."""
    runs: list[dict[str, tuple[float, float, int]]] = []
    for _ in range(IMPORTTIME_RUNS):
        lines = _python("import app", ["-X", "importtime"]).stderr.splitlines()
        found: dict[str, tuple[float, float, int]] = {}
        for line in lines:
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, name = line.removeprefix("import time:").split("|")
            depth = (len(name) - len(name.lstrip(" "))) // 2
            found[name.strip()] = (int(own) / 1000, int(cumulative) / 1000, depth)
        runs.append(found)
    modules = set(runs[0]).intersection(*runs[1:])
    costs = [
        ImportCost(
            module=m,
            self_ms=statistics.median(r[m][0] for r in runs),
            cumulative_ms=statistics.median(r[m][1] for r in runs),
            depth=runs[0][m][2],
        )
        for m in modules
    ]
    return sorted(costs, key=lambda c: c.cumulative_ms, reverse=True)


def _zip() -> ZipInfo | None:
    if not ZIP.exists():
        return None
    with zipfile.ZipFile(ZIP) as archive:
        infos = archive.infolist()
    tops: dict[str, int] = {}
    for info in infos:
        top = info.filename.split("/", 1)[0]
        tops[top] = tops.get(top, 0) + info.file_size
    built = datetime.fromtimestamp(ZIP.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ZipInfo(
        path=str(ZIP.relative_to(ROOT)),
        compressed=ZIP.stat().st_size,
        uncompressed=sum(i.file_size for i in infos),
        files=len(infos),
        built=built,
        largest=sorted(tops.items(), key=lambda t: t[1], reverse=True)[:6],
    )


def run(progress: Callable[[str], None] = lambda _: None, runs: int = RUNS) -> ColdStartResults:
    started = time.perf_counter()
    seconds: dict[str, list[float]] = {k: [] for k in TARGETS}
    cpu: dict[str, list[float]] = {k: [] for k in TARGETS}
    rss: dict[str, list[int]] = {k: [] for k in TARGETS}
    traced: dict[str, list[int]] = {k: [] for k in TARGETS}
    progress(f"cold start: {runs} fresh interpreters per import")
    for _ in range(runs):
        for name, statement in TARGETS.items():
            out = json.loads(_python(_TIMED.format(statement=statement)).stdout.splitlines()[-1])
            seconds[name].append(out["seconds"])
            cpu[name].append(out["cpu_seconds"])
            rss[name].append(out["maxrss_kb"])
    for _ in range(TRACEMALLOC_RUNS):
        for name, statement in TARGETS.items():
            out = json.loads(_python(_TRACED.format(statement=statement)).stdout.splitlines()[-1])
            traced[name].append(out["peak_bytes"])
    progress("cold start: -X importtime")
    imports = _import_costs()
    app_modules = {
        c.module: c.cumulative_ms
        for c in imports
        if c.module == "app" or c.module.startswith(("chalicelib", "chalice", "aws_lambda_p"))
    }
    return ColdStartResults(
        samples={k: Sample(seconds[k], cpu[k], rss[k], traced[k]) for k in TARGETS},
        imports=imports,
        app_modules_ms=app_modules,
        zip=_zip(),
        runs=runs,
        seconds=time.perf_counter() - started,
    )


def zip_path() -> Path:
    return ZIP
