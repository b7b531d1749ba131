"""Errors that help: a function's failure in one line, with its cause and where it is.

Inside a worker (:mod:`local.workers`) the runtime watches which environment variables
the app's own code reads that are not set (:class:`EnvironmentWatch`). When the app fails
to load or a handler raises, the line names the function, the exception, the app's file
and line, and the unset variables it read, so a handler that fails with ``expected string
or bytes-like object, got 'NoneType'`` says which variable was missing.

Lambda's error types for a failed init (lambda-runtime errors, python-exceptions):
``Runtime.ImportModuleError`` for a module that cannot be imported and
``Runtime.UserCodeSyntaxError`` for a syntax error; any other exception keeps its type.

Example::

    watch = EnvironmentWatch.install("/path/to/project")
    try:
        import app
    except Exception as err:
        failure = Failure.of(err, watch)
        failure.line("reports")
        # "function reports failed to load: Runtime.ImportModuleError: Unable to import
        #  module 'app': No module named 'fpdf' (chalicelib/render.py, line 3)"
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

_RUNTIME_DIR = str(Path(__file__).resolve().parent) + os.sep
_LIBRARY_FRAMES = ("<frozen", "_collections_abc.py", f"{os.sep}os.py")


class _WatchedEnviron(os._Environ):  # type: ignore[type-arg]
    """``os.environ`` that remembers unset variables read by the app's own files."""

    watch: EnvironmentWatch

    def __getitem__(self, key: str) -> str:
        try:
            value: str = super().__getitem__(key)
        except KeyError:
            self.watch.missed(key, sys._getframe(1))
            raise
        return value


@dataclass
class EnvironmentWatch:
    """Unset environment variables read by code under ``root`` (not its site-packages)."""

    root: str
    missing: list[str] = field(default_factory=list)

    @classmethod
    def install(cls, root: str | Path) -> EnvironmentWatch:
        watch = cls(str(Path(root).resolve()))
        current = os.environ
        watched = _WatchedEnviron(
            current._data,  # type: ignore[attr-defined]
            current.encodekey,
            current.decodekey,
            current.encodevalue,
            current.decodevalue,
        )
        watched.watch = watch
        os.environ = watched  # noqa: B003 - the same variables, watched
        return watch

    def reset(self) -> None:
        self.missing.clear()

    def missed(self, key: str, frame: Any) -> None:
        for _ in range(8):
            if frame is None:
                return
            filename = frame.f_code.co_filename
            if not any(part in filename for part in _LIBRARY_FRAMES):
                if self._is_app_file(filename) and key not in self.missing:
                    self.missing.append(key)
                return
            frame = frame.f_back

    def _is_app_file(self, filename: str) -> bool:
        try:
            path = str(Path(filename).resolve())
        except OSError:
            return False
        return path.startswith(self.root + os.sep) and "site-packages" not in path


@dataclass(frozen=True)
class Failure:
    """One exception as Lambda reports it, plus where and what was unset."""

    error_type: str
    message: str
    where: str = ""
    unset: tuple[str, ...] = ()
    trace: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        err: BaseException,
        watch: EnvironmentWatch | None = None,
        init: bool = False,
        root: str | Path | None = None,
    ) -> Failure:
        """``root``: the project (default: the watch's, else the working directory)."""
        cause = _original(err)
        error_type, message = type(cause).__name__, _message(cause)
        if init and isinstance(cause, ImportError):
            error_type = "Runtime.ImportModuleError"
            message = f"Unable to import module 'app': {message}"
        elif init and isinstance(cause, SyntaxError):
            error_type = "Runtime.UserCodeSyntaxError"
            message = f"Syntax error in module 'app': {message}"
        if root is None:
            root = watch.root if watch is not None else Path.cwd()
        root = str(Path(root).resolve())
        return cls(
            error_type,
            message,
            _where(cause, root),
            tuple(watch.missing) if watch is not None else (),
            _app_trace(cause),
        )

    @property
    def error(self) -> str:
        """``Type: message`` (what :class:`local.lambdas.Outcome` carries)."""
        return f"{self.error_type}: {self.message}"

    def hint(self) -> str:
        parts = [f"({self.where})"] if self.where else []
        if self.unset:
            parts.append(f"[environment variable(s) not set: {', '.join(self.unset)}]")
        return " ".join(parts)

    def line(self, function: str, during: str = "failed to load") -> str:
        hint = self.hint()
        return f"function {function} {during}: {self.error}" + (f" {hint}" if hint else "")


def _app_trace(err: BaseException) -> tuple[str, ...]:
    """The traceback without the runtime's own frames (Lambda shows none of its own)."""
    frames = [
        frame
        for frame in traceback.extract_tb(err.__traceback__)
        if not frame.filename.startswith(_RUNTIME_DIR)
    ]
    return tuple(traceback.format_list(frames))


def _original(err: BaseException) -> BaseException:
    """Chalice re-raises an app's SyntaxError as a multi-line RuntimeError."""
    context = err.__context__
    if isinstance(err, RuntimeError) and isinstance(context, SyntaxError):
        return context
    return err


def _message(err: BaseException) -> str:
    if isinstance(err, SyntaxError):
        return str(err.msg)
    text = str(err) if not isinstance(err, KeyError) else repr(err.args[0]) if err.args else ""
    return " ".join(text.split())  # one line


def _where(err: BaseException, root: str) -> str:
    """The app's own file and line closest to the error, relative to the project."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{_relative(err.filename, root)}, line {err.lineno}"
    frames = traceback.extract_tb(_traceback(err))
    for frame in reversed(frames):
        relative = _relative(frame.filename, root)
        if relative != frame.filename and "site-packages" not in frame.filename:
            return f"{relative}, line {frame.lineno}"
    return ""


def _traceback(err: BaseException) -> TracebackType | None:
    return err.__traceback__


def _relative(filename: str, root: str) -> str:
    try:
        return str(Path(filename).resolve().relative_to(root))
    except (ValueError, OSError):
        return filename
