"""Typer's own usage errors (unknown option, bad value, missing option) as one JSON document with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from typer import Abort, _click
from typer.core import TyperGroup


def usage_error_document(error: _click.ClickException, argv: Sequence[str] = ()) -> dict:
    """The JSON error document facetopt prints for any error: message, hint and exit code."""
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        command = ctx.command_path
    else:
        words = [arg for arg in argv[: next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))]]
        command = " ".join(["facetopt", *words])
    hint = f"see `{command} --help`"
    if command == "facetopt" and "--json" in error.format_message():
        hint = "--json goes with a command, before or after it: `facetopt inspect dataset --json`"
    return {"error": {"message": error.format_message(), "hint": hint, "exit_code": error.exit_code}}


def json_after_command(argv: list[str]) -> list[str]:
    """`facetopt --json eval ...` means `facetopt eval ... --json`: --json is each command's
    option, so a --json given before the command moves to just after the command's words."""
    first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if first is None or "--json" not in argv[:first]:
        return argv
    end = next((i for i in range(first, len(argv)) if argv[i].startswith("-")), len(argv))
    head = [arg for arg in argv[:first] if arg != "--json"]
    return [*head, *argv[first:end], "--json", *argv[end:]]


class JsonUsageErrors(TyperGroup):
    """The root group: without --json, Typer's own format; with --json, stdout carries only the document."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = json_after_command(list(sys.argv[1:] if args is None else args))
        wants_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
        if not wants_json or not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(argv, prog_name, complete_var, False, **extra)
        except _click.exceptions.ClickException as error:
            document = usage_error_document(error, argv)
            sys.stdout.write(json.dumps(document) + "\n")
            sys.stdout.flush()
            sys.stderr.write(f"error: {document['error']['message']}\n")
            if document["error"]["hint"]:
                sys.stderr.write(f"hint: {document['error']['hint']}\n")
            sys.exit(error.exit_code)
        except Abort:
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)
