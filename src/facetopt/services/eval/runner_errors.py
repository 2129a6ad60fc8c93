"""The eval's own error file, in the eval run folder.

`bt` relays its runner's stderr through a progress-bar library that drops it when bt's own stderr
is not a terminal (as under facetopt), so an eval that fails inside bt would be reported only as
"eval runner exited with status 1". The eval therefore writes what went wrong itself, one JSON
line per entry `{"kind", "message", "detail"?}`, keys masked:

- `exception`: an uncaught exception (the main thread or another one), or the eval's own set-up;
- `login`: the Braintrust login the eval makes before logging an experiment;
- `log_write`: a log write Braintrust refused (the SDK prints "log request failed ...");
- `stderr`: every other line the runner prints on stderr (the first few hundred).

facetopt reads the file back (`read_errors`, `failure_cause`) to name the real cause.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from facetopt.errors import redact_credentials

ERRORS_ENV = "FACETOPT_EVAL_ERRORS"
ERRORS_FILE = "eval_errors.jsonl"
MAX_STDERR_LINES = 400
LOG_WRITE_MARKERS = ("log request failed", "Failed to construct log records")
KINDS_BY_WEIGHT = ("login", "log_write", "exception")


class ErrorFile:
    """Appends redacted error entries; safe from any thread."""

    def __init__(self, path: Path, secrets: Iterable[str | None] = ()):
        self.path = Path(path)
        self.secrets = [s for s in secrets if s]
        self._lock = threading.Lock()
        self._stderr_lines = 0

    def record(self, kind: str, message: str, detail: str | None = None) -> None:
        entry: dict[str, Any] = {"kind": kind, "message": redact_credentials(message, self.secrets)[:2000]}
        if detail:
            entry["detail"] = redact_credentials(detail, self.secrets)[-8000:]
        with self._lock:
            if kind == "stderr":
                if self._stderr_lines >= MAX_STDERR_LINES:
                    return
                self._stderr_lines += 1
            try:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            except OSError:
                pass  # the run folder vanished: nothing better to do than carry on

    def exception(self, exc: BaseException, kind: str = "exception") -> None:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = f"{type(exc).__name__}: {exc}"
        if kind == "exception" and any(m in message for m in LOG_WRITE_MARKERS):
            kind = "log_write"  # BRAINTRUST_SYNC_FLUSH turns a refused write into this exception
        self.record(kind, message, detail)

    def stderr_line(self, line: str) -> None:
        if not line.strip():
            return
        kind = "log_write" if any(m in line for m in LOG_WRITE_MARKERS) else "stderr"
        self.record(kind, line)

    def install(self) -> None:
        """Record uncaught exceptions and copy stderr lines into the file (stderr still goes out)."""
        previous_hook = sys.excepthook
        previous_thread_hook = threading.excepthook

        def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
            if not isinstance(value, KeyboardInterrupt | SystemExit):
                self.exception(value.with_traceback(tb))
            previous_hook(kind, value, tb)

        def thread_hook(args: Any) -> None:
            if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
                self.exception(args.exc_value)
            previous_thread_hook(args)

        sys.excepthook = hook
        threading.excepthook = thread_hook
        if not isinstance(sys.stderr, _Tee):
            sys.stderr = _Tee(sys.stderr, self)


class _Tee:
    """A text stream that writes through to `inner` and hands each complete line to the error file."""

    def __init__(self, inner: TextIO, errors: ErrorFile):
        self._inner = inner
        self._errors = errors
        self._partial = ""

    def write(self, text: str) -> int:
        try:
            self._inner.write(text)
        except (OSError, ValueError):
            pass
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._errors.stderr_line(line)
        return len(text)

    def flush(self) -> None:
        try:
            self._inner.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# -- the parent side -------------------------------------------------------------------------------


def read_errors(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("message"), str):
            entries.append(entry)
    return entries


def failure_cause(entries: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(kind, message) of what most likely made the runner fail, else None.

    A login failure or a refused log write explains a failure better than the exception it causes;
    without a structured entry the last line of the last traceback printed on stderr is used.
    """
    for kind in KINDS_BY_WEIGHT:
        found = [e for e in entries if e.get("kind") == kind]
        if found:
            return kind, found[0]["message"] if kind != "exception" else found[-1]["message"]
    lines = [e["message"] for e in entries if e.get("kind") == "stderr"]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Traceback"):
            tail = [line for line in lines[index + 1 :] if line and not line.startswith(" ")]
            if tail:
                return "exception", tail[-1]
    return None
