"""One-line failures: Lambda's init error types, the app's file and line, unset variables."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from local.diagnose import EnvironmentWatch, Failure


def _run_as_app_file(root: Path, source: str) -> None:
    """Import ``source`` as the project's ``app.py`` (its frames name that file)."""
    path = root / "app.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("diagnosed_app", path)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def _restore(environ: os._Environ[str]) -> None:
    os.environ = environ  # noqa: B003 - the watch replaced the object, not the variables


def test_an_import_error_at_load_is_lambdas_import_module_error_with_the_apps_line(
    tmp_path: Path,
) -> None:
    with pytest.raises(ImportError) as raised:
        _run_as_app_file(tmp_path, "x = 1\nimport no_such_module_here\n")
    failure = Failure.of(raised.value, EnvironmentWatch(str(tmp_path.resolve())), init=True)
    assert failure.error == (
        "Runtime.ImportModuleError: Unable to import module 'app': "
        "No module named 'no_such_module_here'"
    )
    assert failure.line("report") == (
        "function report failed to load: Runtime.ImportModuleError: Unable to import module "
        "'app': No module named 'no_such_module_here' (app.py, line 2)"
    )


def test_chalices_wrapped_syntax_error_is_one_line() -> None:
    try:
        try:
            compile("def broken(:\n", "/project/app.py", "exec")
        except SyntaxError:
            # What chalice.cli.factory does: a multi-line RuntimeError.
            raise RuntimeError("Unable to import your app.py file:\n\nmany\nlines")  # noqa: B904
    except RuntimeError as err:
        failure = Failure.of(err, init=True)
    assert failure.error_type == "Runtime.UserCodeSyntaxError"
    assert failure.message.startswith("Syntax error in module 'app': ")
    assert "/project/app.py, line 1" in failure.line("f")
    assert "\n" not in failure.line("f")


def test_unset_variables_read_by_the_apps_own_files_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = os.environ
    monkeypatch.delenv("LOCAL_DIAGNOSE_UNSET", raising=False)
    try:
        watch = EnvironmentWatch.install(tmp_path)
        os.environ.get("LOCAL_DIAGNOSE_OTHER_UNSET")  # read here, not by the app
        with pytest.raises(TypeError) as raised:
            _run_as_app_file(
                tmp_path,
                "import re\nimport os\nre.sub('a', 'b', os.environ.get('LOCAL_DIAGNOSE_UNSET'))\n",
            )
        failure = Failure.of(raised.value, watch)
    finally:
        _restore(saved)
    assert failure.unset == ("LOCAL_DIAGNOSE_UNSET",)
    assert failure.line("greet", "failed") == (
        "function greet failed: TypeError: expected string or bytes-like object, got 'NoneType' "
        "(app.py, line 3) [environment variable(s) not set: LOCAL_DIAGNOSE_UNSET]"
    )


def test_the_watched_environment_is_the_same_environment(tmp_path: Path) -> None:
    saved = os.environ
    try:
        EnvironmentWatch.install(tmp_path)
        os.environ["LOCAL_DIAGNOSE_SET"] = "1"
        assert saved["LOCAL_DIAGNOSE_SET"] == "1"
        del os.environ["LOCAL_DIAGNOSE_SET"]
        assert "LOCAL_DIAGNOSE_SET" not in saved
    finally:
        _restore(saved)
