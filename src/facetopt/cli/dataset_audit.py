"""`facetopt dataset audit` and `facetopt dataset review export|apply`: trustworthy ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from facetopt.cli.shared.layout import Cell, Column, print_fitted
from facetopt.cli.shared.options import (
    Backend,
    DatasetName,
    EnvFile,
    FacetFilter,
    FlushDeadline,
    JsonFlag,
    MaxCost,
    OutputRoot,
    TargetOrg,
)
from facetopt.cli.shared.output import emit, handles_errors, note, warn
from facetopt.cli.shared.progress import RichProgress
from facetopt.facets.decide.cost import describe_usage

if TYPE_CHECKING:
    from facetopt.domain.audit import AuditedRow, AuditReport, ReviewApplyReport, ReviewExport
    from facetopt.settings import Settings

review_app = typer.Typer(
    help="Review labels by hand: export a review file, edit it, apply it.", no_args_is_help=True
)

TargetProject = Annotated[
    str | None,
    typer.Option("--target-project", help="Project holding the dataset. Env FACET_OPTIMIZER_TARGET_PROJECT."),
]
Split = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Only rows of this split: train, validation, test or all (default: train and validation; "
        "test, or all, is a recorded look at the test split).",
    ),
]
SecondModel = Annotated[
    str | None,
    typer.Option(
        "--second-model",
        help="Model for the second opinion (env FACET_OPTIMIZER_AUDIT_MODEL). Default: the labelling "
        "model again with a re-worded request (a self-consistency check).",
    ),
]
AuditApiBase = Annotated[
    str | None,
    typer.Option(
        "--audit-api-base",
        help="OpenAI-compatible base URL of the second opinion (default: the labeller's); simulated:// "
        "forces the simulation.",
    ),
]
PromptFile = Annotated[
    Path | None,
    typer.Option("--prompt-file", help="Prompt file (default <output-root>/facet_definitions.yaml)."),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the row samples.")]
SHOWN_ROWS = 20


def _settings(env_file: Path | None, **flags: object) -> Settings:
    from facetopt.settings import load_settings

    return load_settings(env_file, warn=warn, **flags)


def _cut(text: str | None, width: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


_AUDIT_COLUMNS = [
    Column("facet", justify="left"),
    Column("rows"),
    Column("agree"),
    Column("kappa (95% CI)"),
    Column("sentiment", keep=2),
    Column("copies", keep=3),
    Column("disagree", keep=1),
]


def render_audit(console: Console, report: AuditReport) -> None:
    kind = "self-consistency check" if report.kind == "self-consistency" else "second model"
    console.print(
        f"audit of {report.target_project} / {report.dataset} ({report.backend}): labels by "
        f"{report.labeller_model or '?'}, second opinion by {report.second_model} ({report.second_endpoint}), "
        f"{kind}",
        highlight=False,
        soft_wrap=True,
    )
    rows: list[list[Cell]] = []
    for f in report.facets:
        agree = "-" if f.decision_agreement is None else f"{f.decision_agreement:.0%}"
        if f.broken:
            kappa = "BROKEN AUDIT"
        elif f.kappa is None:
            kappa = f.kappa_note or "-"
        else:
            kappa = f"{f.kappa:.2f} ({f.kappa_low:.2f}..{f.kappa_high:.2f})"
        labels = "-" if f.sentiment_label_agreement is None else f"{f.sentiment_label_agreement:.0%}"
        cells = [f.facet_name, str(f.rows), agree, kappa, labels, str(f.copies), str(f.disagreements)]
        style = "red" if f.broken else "yellow" if f.warning else ""
        rows.append([Text(c, style=style) for c in cells])
    print_fitted(
        console, _AUDIT_COLUMNS, rows, title="label agreement per facet (positive/negative decision)"
    )
    console.print(f"interval: {report.interval_method}; no kappa under 10 rows", highlight=False)
    if report.disagreeing:
        console.print(
            f"disagreeing rows ({len(report.disagreeing)}"
            + (f", first {SHOWN_ROWS}; --json lists all" if len(report.disagreeing) > SHOWN_ROWS else "")
            + "):",
            highlight=False,
        )
        for row in report.disagreeing[:SHOWN_ROWS]:
            _render_row(console, row)
    for usage in report.usage:
        console.print(describe_usage(usage), highlight=False, soft_wrap=True)
    for message in report.warnings:
        warn(message)
    console.print(
        f"labels: {report.labels_paid} new, {report.labels_from_cache} from cache; artifacts: {report.run_dir}",
        highlight=False,
        soft_wrap=True,
    )


def _render_row(console: Console, row: AuditedRow) -> None:
    console.print(f"  {row.id} ({row.facet_name}, {row.split or 'train'})", highlight=False, soft_wrap=True)
    console.print(f"    expected:   {_cut(row.expected)}", highlight=False, soft_wrap=True)
    console.print(f"    second:     {_cut(row.second_opinion)}", highlight=False, soft_wrap=True)
    console.print(f"    production: {_cut(row.production_output)}", highlight=False, soft_wrap=True)
    if row.permalink:
        console.print(f"    {row.permalink}", highlight=False, soft_wrap=True)


@handles_errors
def audit_command(
    target_project: TargetProject = None,
    dataset: DatasetName = None,
    facet: FacetFilter = None,
    split: Split = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Audit a random (seeded) sample of this many rows.")
    ] = None,
    second_model: SecondModel = None,
    audit_api_base: AuditApiBase = None,
    prompt_file: PromptFile = None,
    seed: Seed = 0,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight (default 128).")] = None,
    max_cost: MaxCost = None,
    target_org: TargetOrg = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Label every row again (a second opinion) and report agreement and Cohen's kappa per facet."""
    from facetopt.services.dataset.audit import audit_dataset

    settings = _settings(
        env_file,
        target_project=target_project,
        dataset=dataset,
        audit_model=second_model,
        audit_api_base=audit_api_base,
        prompt=prompt_file,
        ground_truth_concurrency=concurrency,
        max_cost=max_cost,
        target_org=target_org,
        backend=backend,
        output_root=output_root,
    )
    outcome = audit_dataset(
        settings,
        facet=facet,
        split=split,
        sample=sample,
        seed=seed,
        progress=RichProgress(enabled=True),
        announce=note,
    )
    from facetopt.services.next_steps import audit_next_steps

    outcome.report.next_steps = audit_next_steps(outcome.report)
    emit(outcome.report, as_json, lambda console: render_audit(console, outcome.report))


def render_export(console: Console, export: ReviewExport) -> None:
    console.print(
        f"wrote {export.entries} rows to {export.path}: {export.disagreements} disagreements, "
        f"{export.copies} copies of the production output, {export.agreeing_sample} agreeing rows "
        f"(a random sample: errors both labellers share are invisible otherwise)",
        highlight=False,
        soft_wrap=True,
    )
    for message in export.warnings:
        warn(message)
    console.print(
        f"set `decision` (keep, second or new with new_value) in the file, then: "
        f"`facetopt dataset review apply {export.path} --dry-run`",
        highlight=False,
        soft_wrap=True,
    )


@review_app.command("export")
@handles_errors
def review_export_command(
    file: Annotated[Path, typer.Argument(help="The review file to write (YAML).")],
    target_project: TargetProject = None,
    dataset: DatasetName = None,
    facet: FacetFilter = None,
    split: Split = None,
    only: Annotated[
        str, typer.Option("--only", help="Rows to include: disagreements, copies or all.")
    ] = "disagreements",
    sample_agreeing: Annotated[
        int, typer.Option("--sample-agreeing", help="Also include this many random agreeing rows (0: none).")
    ] = 10,
    second_model: SecondModel = None,
    audit_api_base: AuditApiBase = None,
    prompt_file: PromptFile = None,
    seed: Seed = 0,
    target_org: TargetOrg = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a review file: the rows the audit doubts, each with an empty `decision` to fill in."""
    from facetopt.services.dataset.review import export_review

    settings = _settings(
        env_file,
        target_project=target_project,
        dataset=dataset,
        audit_model=second_model,
        audit_api_base=audit_api_base,
        prompt=prompt_file,
        target_org=target_org,
        backend=backend,
        output_root=output_root,
    )
    export = export_review(
        settings,
        file,
        facet=facet,
        split=split,
        only=only,
        sample_agreeing=sample_agreeing,
        seed=seed,
        progress=RichProgress(enabled=True),
        announce=note,
    )
    emit(export, as_json, lambda console: render_export(console, export))


def render_apply(console: Console, report: ReviewApplyReport) -> None:
    verb = "would change" if report.dry_run else "changed"
    console.print(
        f"{report.path} -> {report.target_project} / {report.dataset} ({report.backend}): "
        f"{len(report.changed)} rows {verb}, {report.confirmed} confirmed as they are, "
        f"{report.unchanged} already applied, {len(report.conflicts)} conflicts, {report.undecided} undecided",
        highlight=False,
        soft_wrap=True,
    )
    for change in report.changed:
        console.print(
            f"  {change.id} ({change.facet_name}, {change.split or 'train'}): {change.decision}; "
            f"{change.bucket_before} -> {change.bucket_after}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"    before: {_cut(change.before)}", highlight=False, soft_wrap=True)
        console.print(f"    after:  {_cut(change.after)}", highlight=False, soft_wrap=True)
    for conflict in report.conflicts:
        console.print(
            f"  [red]conflict[/red] {conflict.id}: {conflict.reason}", highlight=False, soft_wrap=True
        )
    if not report.dry_run and (report.written or report.changed or report.confirmed):
        console.print(f"{report.verified} rows verified by reading the dataset back", highlight=False)
    for message in report.warnings:
        warn(message)


@review_app.command("apply")
@handles_errors
def review_apply_command(
    file: Annotated[Path, typer.Argument(help="A review file written by `dataset review export`.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
    ] = False,
    target_project: TargetProject = None,
    dataset: DatasetName = None,
    target_org: TargetOrg = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    flush_deadline: FlushDeadline = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply the decisions of a review file to the dataset (verified by reading back)."""
    from facetopt.services.dataset.review import apply_review

    settings = _settings(
        env_file,
        target_project=target_project,
        dataset=dataset,
        target_org=target_org,
        flush_deadline=flush_deadline,
        backend=backend,
        output_root=output_root,
    )
    report = apply_review(settings, file, dry_run=dry_run, announce=note)
    emit(report, as_json, lambda console: render_apply(console, report))
