"""Where output goes: data on stdout (a table, or one JSON document), everything else on stderr."""

from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from facetopt.errors import FacetoptError

_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"`[^`\n]*`\S*|\S+")  # a `quoted command` moves to the next line whole


def _tokens(plain: str, width: int) -> list[tuple[int, int]]:
    spans = []
    for token in _TOKEN.finditer(plain):
        if token.end() - token.start() > width and " " in token.group():
            spans += [
                (token.start() + w.start(), token.start() + w.end()) for w in _WORD.finditer(token.group())
            ]
        else:
            spans.append((token.start(), token.end()))
    return spans


def wrap_words(text: Text, width: int, hang: int | None = None) -> Text:
    """Break each line at spaces to fit `width`, continuing at the line's own indent (a bullet's
    text under its text). A word longer than the width (a URL, an id, a path) goes whole on a line
    of its own, a `quoted command` that fits the width is not broken, and a `$ ` command line is
    left whole, to be copied."""
    out: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        plain = line.plain
        if len(plain) <= width or plain.startswith("$ "):
            out.append(line)
            continue
        indent = len(plain) - len(plain.lstrip(" "))
        if plain[indent : indent + 2] in ("- ", "+ ", "* "):
            indent += 2  # a bullet's text continues under its text, not under the bullet
        shift = (indent if indent <= width // 2 else 0) if hang is None else hang
        start, end, prefix = 0, 0, 0
        for word_start, word_end in _tokens(plain, width):
            if end > start and prefix + word_end - start > width:
                out.append(Text(" " * prefix) + line[start:end])
                start, prefix = word_start, shift
            end = word_end
        out.append(Text(" " * prefix) + line[start:end])
    return Text("\n").join(out)


class WrappingConsole(Console):
    """A console whose text lines wrap at the width between words, never inside one (rich would
    fold a URL mid-word, and `soft_wrap` does not wrap at all). Tables and other renderables
    are printed as rich lays them out."""

    def print(self, *objects: Any, sep: str = " ", hang: int | None = None, **options: Any) -> None:
        """`hang`: the indent of continued lines (default: the line's own indent)."""
        if len(objects) == 1 and isinstance(objects[0], Table) and objects[0].title:
            table = objects[0]  # its title on a line of its own: a table wraps it at its own width
            title, table.title = table.title, None
            try:
                self.print(title if isinstance(title, str | Text) else str(title), style="table.title")
                super().print(table, **options)
            finally:
                table.title = title
            return
        if not objects or not all(isinstance(o, str | Text) for o in objects):
            super().print(*objects, sep=sep, **options)
            return
        texts = [
            o
            if isinstance(o, Text)
            else self.render_str(
                o,
                markup=options.get("markup"),
                highlight=options.get("highlight"),
                emoji=options.get("emoji"),
            )
            for o in objects
        ]
        options["soft_wrap"] = True
        super().print(wrap_words(Text(sep).join(texts), self.width, hang), **options)


stdout = WrappingConsole(soft_wrap=False)
stderr = WrappingConsole(stderr=True)


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
    lines = [f"error: {error.message}", *([f"hint: {error.hint}"] if error.hint else [])]
    if sys.stderr.isatty():  # wrapped between words for a person; one line each for a pipe
        for line in lines:
            stderr.print(line, markup=False, highlight=False)
        return
    sys.stderr.write("".join(f"{line}\n" for line in lines))
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


_DENIED = re.compile(r'Cannot open file "([^"]+)": Permission denied')


def user_side(error: Exception) -> FacetoptError | None:
    """A path, permission or full disk: the user's to fix, named as such (not a bug to report)."""
    denied = _DENIED.search(str(error))  # DuckDB's, e.g. the store's .wal in a read-only folder
    if denied:
        folder = os.path.dirname(denied.group(1)) or "."
        return FacetoptError(
            f"cannot write {denied.group(1)}: permission denied",
            hint=f"make {folder} and the files in it writable, or pass another --output-root; "
            "paid work is cached",
        )
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
