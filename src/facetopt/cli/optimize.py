"""`facetopt optimize` and `facetopt inspect optimize`: propose, screen and validate prompt edits."""

# No `from __future__ import annotations`: Typer reads the real Annotated types.

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from facetopt.cli.shared.layout import Cell, Column, print_fitted
from facetopt.cli.shared.options import Backend, DatasetName, EnvFile, JsonFlag, MaxCost, OutputRoot
from facetopt.cli.shared.output import emit, handles_errors, note, warn
from facetopt.cli.shared.progress import RichProgress
from facetopt.facets.decide.cost import describe_usage

_COLUMNS = (
    Column("candidate", "left"),
    Column("parent", "left", keep=3),
    Column("edit", "left", keep=2),
    Column("status", "left"),
    Column("minibatch"),
    Column("train", keep=1),
)


def _rate(value: float | None, delta: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ({delta:+.3f})" if delta is not None else "")


def render_optimize(console: Console, report: Any) -> None:
    rows: list[list[Cell]] = [
        [Text(c.candidate_id), c.parent, c.family or "-", c.status,
         _rate(c.minibatch_score, c.minibatch_delta), _rate(c.train_score, c.train_delta)]
        for c in report.candidates
    ]  # fmt: skip
    title = f"optimize {report.facet} ({report.target}: {report.metric}), run {report.run_id}"
    print_fitted(console, list(_COLUMNS), rows, title=title)
    console.print(
        f"baseline: minibatch {_rate(report.baseline_minibatch_score, None)}, "
        f"train {_rate(report.baseline_train_score, None)} on {report.train_rows} rows",
        highlight=False,
    )
    for c in report.candidates:
        for reason in c.guard_reasons:
            console.print(f"  {c.candidate_id} rejected: {reason}", highlight=False, soft_wrap=True)
        if c.error:
            console.print(f"  {c.candidate_id} failed: {c.error}", highlight=False, soft_wrap=True)
    for phase in report.spend:
        tokens = phase.prompt_tokens + phase.completion_tokens
        console.print(
            f"  {phase.phase:<9} {phase.calls:>5} calls ({phase.from_cache} from the cache), "
            f"{tokens:>6} tokens, about ${phase.cost_usd:.4f}",
            highlight=False,
        )
    for usage in report.usage:
        console.print(f"  {describe_usage(usage)}", highlight=False, soft_wrap=True)
    budget = f" of --budget {report.budget}" if report.budget is not None else ""
    limit = f" of --max-cost ${report.max_cost:g}" if report.max_cost is not None else ""
    console.print(
        f"calls: {report.calls}{budget}; estimated cost: about ${report.cost_usd:.4f}{limit} "
        "(prices are assumptions; see docs/cost.md)",
        highlight=False,
        soft_wrap=True,
    )
    if report.stopped:
        console.print(f"stopped: {report.stopped}", highlight=False, soft_wrap=True)
    if report.status != "complete":
        colour = "yellow" if report.status == "interrupted" else "red"
        console.print(
            f"[bold {colour}]{report.status.upper()}[/]: {report.cause}", highlight=False, soft_wrap=True
        )
        if report.winner is None:
            return
    if report.winner is None:
        console.print(report.reasons[-1] if report.reasons else "no winner", highlight=False)
        return
    colour = {"KEEP": "green", "REJECT": "red"}.get(report.verdict or "", "yellow")
    console.print(
        f"winner {report.winner} ({(report.winner_sha256 or '')[:12]}): [bold {colour}]{report.verdict}[/] "
        f"on validation ({report.validation_evals_run} validation eval(s) run)",
        highlight=False,
    )
    if report.reasons:
        console.print(f"  {report.reasons[-1]}", highlight=False, soft_wrap=True)
    if report.diff:
        console.print(report.diff, highlight=False, soft_wrap=True)
    where = (
        "applied to " + report.prompt_file if report.applied else f"not applied; see {report.candidate_file}"
    )
    console.print(where, highlight=False, soft_wrap=True)


@handles_errors
def optimize_command(
    facet: Annotated[str, typer.Option("--facet", help="The facet whose prompt to improve.")],
    target: Annotated[
        str, typer.Option(help="balanced, precision or recall: the metric screening and the verdict judge.")
    ] = "balanced",
    candidates: Annotated[int, typer.Option("--candidates", help="Proposals per round (K).")] = 4,
    rounds: Annotated[
        int, typer.Option("--rounds", help="Rounds (R); later rounds start from the best.")
    ] = 3,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            help="Most calls (proposer, facet model, judge; cached or not); the final validation eval is "
            "reserved first. Default: no limit.",
        ),
    ] = None,
    max_cost: MaxCost = None,
    minibatch: Annotated[
        int, typer.Option("--minibatch", help="Train rows every candidate is screened on.")
    ] = 30,
    proposer_model: Annotated[
        str | None,
        typer.Option(
            help="Proposer model (default the labelling model). Env FACET_OPTIMIZER_PROPOSER_MODEL."
        ),
    ] = None,
    proposer_api_base: Annotated[
        str | None,
        typer.Option(help="Proposer base URL (default the labeller's); simulated:// simulates it."),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the winner into the prompt file, only on a KEEP verdict.")
    ] = False,
    dataset: DatasetName = None,
    target_project: Annotated[str | None, typer.Option(help="Project holding the dataset.")] = None,
    prompt: Annotated[
        Path | None, typer.Option(help="Prompt file (default <output-root>/facet_definitions.yaml).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Facet model (default brain-facet-1).")] = None,
    api_base: Annotated[
        str | None, typer.Option(help="Facet model base URL; simulated:// simulates it.")
    ] = None,
    judge_api_base: Annotated[
        str | None, typer.Option(help="Judge base URL; simulated:// simulates it.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Call the models again instead of reusing cached results.")
    ] = False,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Propose prompt edits from train failures, guard and screen them on train, validate the winner once."""
    from facetopt.services.next_steps import optimize_next_steps
    from facetopt.services.optimize.model import OptimizeOptions
    from facetopt.services.optimize.run import run_optimize
    from facetopt.settings import load_settings

    settings = load_settings(
        env_file,
        warn=warn,
        dataset=dataset,
        target_project=target_project,
        prompt=prompt,
        model=model,
        api_base=api_base,
        judge_api_base=judge_api_base,
        proposer_model=proposer_model,
        proposer_api_base=proposer_api_base,
        use_cache=False if no_cache else None,
        max_cost=max_cost,
        backend=backend,
        output_root=output_root,
    )
    options = OptimizeOptions(
        facet=facet, target=target, candidates=candidates, rounds=rounds, budget=budget,
        minibatch=minibatch, apply=apply,
    )  # fmt: skip
    report = run_optimize(settings, options, RichProgress(enabled=True), announce=note, warn=warn)
    report.next_steps = optimize_next_steps(report)
    emit(report, as_json, lambda console: render_optimize(console, report))
    if report.status == "failed":
        sys.stderr.write(
            f"error: optimize failed: {report.cause}\nhint: check the proposer and facet model (their "
            f"base URLs, keys and replies; `facetopt inspect optimize {report.run_id}` lists every "
            "candidate's error); paid calls are cached\n"
        )
        raise typer.Exit(1)


@handles_errors
def inspect_optimize_command(
    run: Annotated[
        str, typer.Argument(help="Run id (its folder under <output-root>/optimize), path, or latest.")
    ] = "latest",
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """An optimize run: candidates, hypotheses, guard decisions, scores, lineage, spend and the verdict."""
    from facetopt.services.next_steps import optimize_next_steps
    from facetopt.services.optimize.record import find_run, read_report
    from facetopt.settings import load_settings

    settings = load_settings(env_file, warn=warn, output_root=output_root)
    report = read_report(find_run(settings.output_root, run))
    report.next_steps = optimize_next_steps(report)
    emit(report, as_json, lambda console: render_optimize(console, report))
