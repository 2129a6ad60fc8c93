"""Where output goes: data on stdout (a table, or one JSON document), everything else on stderr."""

from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console

from facetopt.errors import FacetoptError

stdout = Console(soft_wrap=False)
stderr = Console(stderr=True)


def emit(
    document: BaseModel | dict | list, as_json: bool, render: Callable[[Console], None] | None = None
) -> None:
    """Print a command's output model: JSON on stdout with --json, else its rich rendering."""
    if as_json or render is None:
        if isinstance(document, BaseModel):
            text = document.model_dump_json(indent=2)
        else:
            text = json.dumps(document, indent=2, default=str)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    render(stdout)
    steps = getattr(document, "next_steps", None)
    if steps is not None:
        next_line(stdout, steps)


def next_line(console: Console, steps: list) -> None:
    """The human output's last line, on stdout with the data: what to do now (`next_steps` in --json)."""
    from facetopt.domain.next_steps import one_line

    console.print(one_line(steps), markup=False, highlight=False)  # wraps between words


def note(message: str) -> None:
    """A progress or status line on stderr."""
    stderr.print(message, highlight=False)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def report_error(error: FacetoptError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"error": error.to_dict()}) + "\n")
        sys.stdout.flush()
    sys.stderr.write(f"error: {error.message}\n")
    if error.hint:
        sys.stderr.write(f"hint: {error.hint}\n")
    sys.stderr.flush()


_USER_SIDE_ERRNO = {
    errno.ENOSPC: ("no space left on the disk", "free some space (or pass another --output-root) and re-run"),
    errno.EDQUOT: ("disk quota exceeded", "free some space (or pass another --output-root) and re-run"),
    errno.EROFS: ("the file system is read-only", "pass a writable --output-root"),
    errno.EACCES: ("permission denied", "check the path's permissions, or pass another --output-root"),
    errno.EPERM: ("operation not permitted", "check the path's permissions, or pass another --output-root"),
    errno.ENOTDIR: (
        "a path in it is a file, not a folder",
        "pass a folder (for --output-root, a new or existing folder)",
    ),
    errno.EEXIST: (
        "a file is in the way of a folder",
        "pass a folder (for --output-root, a new or existing folder)",
    ),
    errno.EISDIR: ("it is a folder, not a file", "pass a file"),
    errno.ENOENT: ("no such file or folder", "check the path"),
}


def user_side(error: Exception) -> FacetoptError | None:
    """A path, permission or full disk: the user's to fix, named as such (not a bug to report)."""
    if not isinstance(error, OSError) or error.errno not in _USER_SIDE_ERRNO:
        return None
    what, hint = _USER_SIDE_ERRNO[error.errno]
    where = f" {error.filename}" if error.filename else ""
    return FacetoptError(f"cannot write or read{where}: {what}", hint=f"{hint}; paid work is cached")


def unexpected(error: Exception) -> FacetoptError:
    """A bug or an unforeseen failure: still one line, with any key from the environment masked."""
    from facetopt.errors import redact_credentials

    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    secrets = [v for k, v in os.environ.items() if k.endswith("API_KEY")]
    first_line = redact_credentials(first_line, secrets)
    return FacetoptError(
        f"unexpected {type(error).__name__}: {first_line}",
        hint="re-run with FACETOPT_DEBUG=1 for the traceback, and report it; paid work is cached",
    )


class _StderrNotes(logging.Handler):
    """Shows the clients' waiting notices (logger `facetopt.waiting`) as dim lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        stderr.print(record.getMessage(), style="dim", markup=False, highlight=False)


def show_waiting_notes() -> None:
    waiting = logging.getLogger("facetopt.waiting")
    if not any(isinstance(h, _StderrNotes) for h in waiting.handlers):
        waiting.addHandler(_StderrNotes())
    waiting.setLevel(logging.INFO)
    waiting.propagate = False


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn FacetoptError and Ctrl-C into one `error:` line and an exit code; tracebacks only with FACETOPT_DEBUG=1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json", False))
        show_waiting_notes()
        try:
            return command(*args, **kwargs)
        except FacetoptError as error:
            if os.environ.get("FACETOPT_DEBUG") == "1":
                raise
            report_error(error, as_json)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            report_error(
                FacetoptError(
                    "interrupted", hint="re-run the same command: paid work is cached", exit_code=130
                ),
                as_json,
            )
            raise typer.Exit(130) from None
        except Exception as error:
            if (
                type(error).__module__.split(".")[0] in ("typer", "click")
                or os.environ.get("FACETOPT_DEBUG") == "1"
            ):
                raise
            report_error(user_side(error) or unexpected(error), as_json)
            raise typer.Exit(1) from None

    wrapper.__signature__ = inspect.signature(command, eval_str=True)  # type: ignore[attr-defined]
    return wrapper
