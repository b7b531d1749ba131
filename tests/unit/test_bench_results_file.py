"""`python -m bench` rewrites bench/results.md but keeps the sections other runs wrote."""

from __future__ import annotations

from bench.__main__ import KEPT_MARKER, with_kept_sections


def test_the_sections_below_the_marker_survive_a_rewrite() -> None:
    previous = (
        f"# old report\n\nold figures\n\n{KEPT_MARKER}\n\n## Local runtime\n\n32.5 orders/s\n"
    )
    rewritten = with_kept_sections("# new report\n\nnew figures\n", previous)
    assert (
        rewritten
        == f"# new report\n\nnew figures\n\n{KEPT_MARKER}\n\n## Local runtime\n\n32.5 orders/s\n"
    )


def test_a_file_without_the_marker_is_replaced_whole() -> None:
    assert with_kept_sections("# new\n", "# old\n") == "# new\n"


def test_the_committed_results_keep_the_local_runtime_section() -> None:
    from bench import env

    text = (env.ROOT / "bench" / "results.md").read_text(encoding="utf-8")
    assert text.index(KEPT_MARKER) < text.index("## Local runtime under Lambda's rules")
