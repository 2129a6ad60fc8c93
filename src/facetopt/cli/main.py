"""The `facetopt` root: its commands load when used (cli/commands.py)."""

from __future__ import annotations

import typer

from facetopt import __version__
from facetopt.cli.commands import LazyRoot

app = typer.Typer(
    name="facetopt",
    help="Turn production facet traces into ground truth and improve facet prompts with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyRoot,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facetopt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """facetopt: dataset, bootstrap, eval, inspect, compare, report, optimize."""


def run() -> None:
    try:
        app()
    except SystemExit as ended:
        _exit_now_if_stuck(ended.code)
        raise


def _exit_now_if_stuck(code: object) -> None:
    """After Ctrl-C, or once facetopt stopped waiting for Braintrust, end the process now: the
    braintrust SDK's pool threads may still be blocked on a request, and the interpreter joins
    them at exit (a second Ctrl-C then prints a threading traceback)."""
    import logging
    import os
    import sys

    http = sys.modules.get("facetopt.clients.braintrust.http")
    abandoned = http is not None and http.abandoned()
    if not (abandoned or (code == 130 and "braintrust" in sys.modules)):
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 1)
