"""`facetopt demo`: the whole loop offline, each step announced with its facetopt command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from facetopt.cli.shared.options import JsonFlag
from facetopt.cli.shared.output import emit, handles_errors, note, stderr, stdout, warn
from facetopt.services.demo.loop import DemoSummary, command_line


class ConsoleSteps:
    """Shows each step on stdout (or only the commands on stderr with --json)."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.console = stderr if as_json else stdout

    def step(self, title: str, argv: list[str]) -> None:
        # the title under a bare rule, not in it: a rule cuts a long title
        self.console.print(Rule())
        self.console.print(Text(title, style="bold"))
        self.console.print(f"[bold cyan]$ {command_line(argv)}[/]", highlight=False, soft_wrap=True)

    def show(self, kind: str, document: Any) -> None:
        if self.as_json:
            return
        from facetopt.cli.bootstrap import render_bootstrap
        from facetopt.cli.compare import render_compare
        from facetopt.cli.dataset import render_create
        from facetopt.cli.dataset_audit import render_audit
        from facetopt.cli.eval import render_eval
        from facetopt.cli.inspect import render_failures
        from facetopt.cli.optimize import render_optimize
        from facetopt.cli.publish import render_publish
        from facetopt.cli.report import render_report_summary

        renderers: dict[str, Callable[[Console, Any], None]] = {
            "dataset": render_create,
            "bootstrap": render_bootstrap,
            "eval": render_eval,
            "failures": render_failures,
            "compare": render_compare,
            "edit": render_edit,
            "publish": render_publish,
            "audit": render_audit,
            "optimize": render_optimize,
            "report": render_report_summary,
        }
        renderers[kind](self.console, document)


def render_edit(console: Console, change: Any) -> None:
    console.print(
        f"appended to the {change.facet_name} prompt in {change.prompt_file}:",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"  + {change.added_sentence}", style="green", highlight=False, soft_wrap=True)
    console.print(f"prompt sha256 {change.before_sha256[:12]} -> {change.after_sha256[:12]}", highlight=False)


def render_summary(console: Console, summary: DemoSummary) -> None:
    console.print(Rule("Summary", align="left"))
    change = summary.prompt_change
    console.print(
        f"{summary.dataset_rows} labelled rows; weakest facet: {summary.weakest_facet}; "
        f"edit: data-boundary sentence added ({change.before_sha256[:12]} -> {change.after_sha256[:12]})",
        highlight=False,
        soft_wrap=True,
    )
    for label, deltas in ((summary.weakest_facet, summary.facet_deltas), ("overall", summary.deltas)):
        shown = ", ".join(f"{k} {v:+.3f}" for k, v in deltas.items() if v is not None)
        console.print(f"{label} deltas (candidate - baseline): {shown}", highlight=False, soft_wrap=True)
    colour = {"KEEP": "green", "REJECT": "red"}.get(summary.verdict, "yellow")
    console.print(
        f"verdict: [bold {colour}]{summary.verdict}[/] overall, {summary.facet_verdict} for {summary.weakest_facet} "
        "(target balanced, on validation)",
        highlight=False,
    )
    console.print(
        f"label audit: {summary.label_disagreements} of {summary.audited_rows} validation labels doubted by "
        "a second opinion (the simulated labeller's planted mistakes); review them with "
        "`facetopt dataset review export FILE`",
        highlight=False,
        soft_wrap=True,
    )
    if summary.optimize is not None:
        opt = summary.optimize
        console.print(
            f"optimize {opt.facet}: winner {opt.winner or 'none'}, verdict {opt.verdict or '-'} on validation "
            f"({opt.validation_evals_run} validation eval of its own), {opt.calls} of {opt.budget} calls "
            f"(about ${opt.cost_usd:.4f} at the assumed prices), "
            f"{len(opt.rejected)} candidates rejected by the guard; "
            + ("applied to the prompt file" if opt.applied else "prompt file unchanged")
            + f"; `facetopt inspect optimize {opt.run_id}` shows it",
            highlight=False,
            soft_wrap=True,
        )
    if summary.report_page:
        console.print("the decision page (open it in a browser; it fetches nothing):", highlight=False)
        console.print(summary.report_page, highlight=False, soft_wrap=True)
    console.print(
        f"simulated roles: {', '.join(summary.simulated_roles)}. Everything is under {summary.output_root}; "
        "repeat the commands above against your own project (see README.md and AGENTS.md).",
        highlight=False,
        soft_wrap=True,
    )


@handles_errors
def demo_command(
    output_root: Annotated[
        Path | None,
        typer.Option(
            "--output-root", help="A fresh folder for the demo (default .local/facetopt-demo/<UTC time>)."
        ),
    ] = None,
    optimize: Annotated[
        bool,
        typer.Option(
            "--optimize", help="Then run `facetopt optimize` on the weakest facet (about 10 s more)."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole loop offline on the bundled sample traces with simulated models (no key, no network)."""
    from facetopt.services.demo.loop import prepare_demo, run_demo, without_user_settings
    from facetopt.settings import load_settings

    note("facetopt demo: local backend, bundled sample traces, SIMULATED labeller, facet model and judge")
    said: set[str] = set()

    def warn_once(message: str) -> None:
        if message not in said:
            said.add(message)
            warn(message)

    env_file, flags = prepare_demo(output_root)
    with without_user_settings():
        settings = load_settings(env_file, warn=warn_once, **flags)
        summary = run_demo(
            settings, ConsoleSteps(as_json), announce=lambda _message: None, warn=warn_once, optimize=optimize
        )
    emit(summary, as_json, lambda console: render_summary(console, summary))
