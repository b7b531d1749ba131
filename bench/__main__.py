"""``python -m bench``: run every benchmark, print the report, write ``bench/results.md``.

Options (for quick looks; the committed results use the defaults)::

    python -m bench --quick       # small tables and few repetitions, a minute or so
    python -m bench --no-write    # print only
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import env

# Sections below this line in bench/results.md come from other runs (bench.local_pipeline,
# before/after comparisons) and are kept when `python -m bench` rewrites the file.
KEPT_MARKER = "<!-- kept by python -m bench: the sections below come from other runs -->"


def with_kept_sections(generated: str, previous: str) -> str:
    """The generated report followed by the previous file's kept sections, if any."""
    at = previous.find(KEPT_MARKER)
    return generated if at < 0 else generated.rstrip("\n") + "\n\n" + previous[at:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    parser.add_argument("--new-orders", type=int, default=100, help="orders processed per run")
    args = parser.parse_args(argv)

    env.configure()
    # Imported only now: the app reads its environment at import.
    import app as app_module
    from bench import coldstart, cost, cpu, report
    from chalicelib.config import get_settings

    def progress(line: str) -> None:
        print(f"[bench {time.perf_counter() - started:6.1f}s] {line}", file=sys.stderr)

    started = time.perf_counter()
    app = app_module.app
    sizes = (200, 1_000) if args.quick else (1_000, 10_000)
    derived = (10_000, 100_000) if args.quick else (100_000,)
    new_orders = 20 if args.quick else args.new_orders
    # Fresh interpreters first, while this process is still small.
    cold = coldstart.run(progress, runs=3 if args.quick else coldstart.RUNS)
    cpu_results = cpu.run(app, progress, 0.3 if args.quick else 1.5)
    cost_results = cost.run(app, sizes, derived, new_orders, progress)
    progress("report")
    text = report.build(
        cost_results,
        cpu_results,
        cold,
        pending_shards=get_settings().pending_shards,
        seconds=time.perf_counter() - started,
    )
    if not args.no_write and not args.quick:
        results = env.ROOT / "bench" / "results.md"
        previous = results.read_text(encoding="utf-8") if results.exists() else ""
        results.write_text(with_kept_sections(text, previous), encoding="utf-8")
        progress("wrote bench/results.md")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
