"""`facetopt dataset ...`: create (and upload) ground-truth datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from facetopt.cli.shared.layout import Cell, Column, print_fitted
from facetopt.cli.shared.options import (
    Backend,
    EnvFile,
    FlushDeadline,
    JsonFlag,
    MaxCost,
    OutputRoot,
    TargetOrg,
)
from facetopt.cli.shared.output import emit, handles_errors, note, warn
from facetopt.cli.shared.progress import RichProgress
from facetopt.domain.dataset import BalanceReport, DatasetCreateSummary
from facetopt.facets.decide.cost import describe_usage

if TYPE_CHECKING:
    from facetopt.services.dataset.upload import DatasetUploadSummary

app = typer.Typer(help="Build ground-truth datasets from production facet spans.", no_args_is_help=True)


def render_balance(console: Console, report: BalanceReport, title: str | None = None) -> None:
    with_test = report.total.test > 0  # the test column only for datasets that hold one
    with_duplicates = report.total.duplicate_groups > 0
    columns = [
        Column("facet", justify="left"),
        Column("rows"),
        Column("positive", keep=2),
        Column("negative", keep=2),
        Column("train", keep=1),
        Column("validation", keep=1),
        *([Column("test", keep=1)] if with_test else []),
        *([Column("duplicate groups", keep=3)] if with_duplicates else []),
    ]
    rows: list[list[Cell]] = []
    for f in [*report.facets, report.total]:
        cells = [f.facet_name, str(f.rows), str(f.positive), str(f.negative), str(f.train), str(f.validation)]
        straddling = f" ({f.straddling_groups} across splits)" if f.straddling_groups else ""
        duplicates = (
            [f"{f.duplicate_groups} ({f.duplicate_rows} rows){straddling}"] if with_duplicates else []
        )
        rows.append([*cells, *([str(f.test)] if with_test else []), *duplicates])
    print_fitted(
        console,
        columns,
        rows,
        title=title or f"{report.target_project} / {report.dataset} ({report.backend})",
        bold_rows=[len(rows) - 1],
    )


def render_create(console: Console, summary: DatasetCreateSummary) -> None:
    c = summary.counts
    console.print(
        f"run {summary.run_id}: {c.candidates} candidate spans, {c.parsed_calls} facet calls, "
        f"{c.selected_calls} selected; labeller {summary.ground_truth_model} ({summary.ground_truth_endpoint})",
        highlight=False,
    )
    if summary.dry_run:
        table = Table(title="would label (dry run: no model call made)")
        for column in ("facet", "positive", "negative"):
            table.add_column(column)
        for facet, buckets in summary.would_label.items():
            table.add_row(facet, str(buckets.get("positive", 0)), str(buckets.get("negative", 0)))
        console.print(table)
        console.print(
            f"dry run: no model call; nothing written to the dataset, the label cache or the store. "
            f"The run folder keeps what was read and sampled, to check it (and for `facetopt bootstrap`): "
            f"{', '.join(summary.dry_run_wrote)}",
            highlight=False,
        )
    else:
        stored = f"{c.uploaded_rows} stored"
        if summary.backend == "braintrust":
            stored = (
                f"{c.uploaded_rows} verified in Braintrust dataset {summary.dataset!r} by reading back"
                if c.uploaded_rows
                else "none uploaded"
            )
        shared = summary.labels_paid - summary.label_requests_paid
        bought = (
            f" ({summary.label_requests_paid} requests paid, {shared} calls shared one)" if shared else ""
        )
        console.print(
            f"labels for {summary.label_calls} calls: {summary.labels_from_cache} from cache, "
            f"{summary.labels_paid} paid{bought}, {summary.labels_failed} failed; "
            f"{c.dataset_rows} rows written, {stored}",
            highlight=False,
        )
        if c.dataset_total_rows is not None:
            merged = c.duplicate_rows_merged
            console.print(
                f"dataset {summary.dataset!r} now holds {c.dataset_total_rows} rows, "
                f"{c.rows_from_earlier_runs or 0} of them from earlier runs"
                + (f" ({c.existing_rows} written again, their splits kept)" if c.existing_rows else "")
                + (f"; kept {c.kept_reviewed_labels} reviewed labels" if c.kept_reviewed_labels else "")
                + (f"; {merged} repeated row(s) with the same label merged" if merged else ""),
                highlight=False,
            )
        if summary.balance:
            render_balance(console, summary.balance)
    for usage in summary.usage:
        console.print(describe_usage(usage), highlight=False)
    for message in summary.warnings:
        warn(message)
    console.print(f"artifacts: {summary.run_dir}", highlight=False)


@app.command("create")
@handles_errors
def create_command(
    source_project: Annotated[
        str | None, typer.Option(help="Source project (name or id) holding the facet spans.")
    ] = None,
    target_project: Annotated[str | None, typer.Option(help="Project that receives the dataset.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name.")] = None,
    source_org: Annotated[str | None, typer.Option(help="Org of the source project (Braintrust).")] = None,
    target_org: TargetOrg = None,
    source_model: Annotated[
        str | None,
        typer.Option(help="Comma list of facet models to read (default brain-facet-latest,brain-facet-1)."),
    ] = None,
    ground_truth_model: Annotated[str | None, typer.Option(help="Labelling model (default gpt-5.4).")] = None,
    ground_truth_api_base: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible base URL for the labeller; simulated:// forces the simulation."),
    ] = None,
    facet_name: Annotated[str | None, typer.Option(help="Use this facet name for every call found.")] = None,
    positive_limit: Annotated[
        int | None, typer.Option(help="Positive examples per facet (default 100).")
    ] = None,
    negative_limit: Annotated[
        int | None, typer.Option(help="Negative examples per facet (default 100).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Source spans to read (default 5 x (positive + negative)).")
    ] = None,
    created_after_sql: Annotated[
        str | None, typer.Option(help="Window start SQL (default NOW() - INTERVAL 7 DAY).")
    ] = None,
    created_before_sql: Annotated[
        str | None, typer.Option(help="Window end SQL (default NOW() - INTERVAL 1 HOUR).")
    ] = None,
    extra_where_sql: Annotated[
        str | None, typer.Option(help="Extra WHERE condition, ANDed in parentheses.")
    ] = None,
    root_span_id: Annotated[
        list[str] | None, typer.Option(help="Only these traces (repeatable); no window, no sampling limits.")
    ] = None,
    root_span_id_file: Annotated[
        Path | None, typer.Option(help="File of root span ids, one per line.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Labelling requests in flight (default 128).")
    ] = None,
    validation_fraction: Annotated[
        float | None, typer.Option(help="Share of each facet/bucket for validation (0.2).")
    ] = None,
    test_fraction: Annotated[
        float | None,
        typer.Option(
            help="Share of each facet/bucket held out as a test split, read only by `eval --split test` "
            "(default 0). Env FACET_OPTIMIZER_TEST_FRACTION."
        ),
    ] = None,
    call_deadline: Annotated[
        float | None,
        typer.Option(
            help="Seconds one labelling call may keep being retried (429s, 5xx, timeouts; default 600). "
            "Env FACET_OPTIMIZER_CALL_DEADLINE."
        ),
    ] = None,
    skip_upload: Annotated[
        bool, typer.Option("--skip-upload", help="Write artifacts only; do not upload to Braintrust.")
    ] = False,
    source_file: Annotated[
        list[Path] | None,
        typer.Option(help="NDJSON span export or `bt sync pull` folder (repeatable; local backend)."),
    ] = None,
    max_cost: MaxCost = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Fetch, parse and sample; report what would be labelled and its estimated tokens and "
            "cost. No model call; nothing written to the dataset, label cache or store; only the run "
            "folder (the spans read and sampled).",
        ),
    ] = False,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    flush_deadline: FlushDeadline = None,
    as_json: JsonFlag = False,
) -> None:
    """Pull facet LLM spans, sample positives and negatives per facet, label them, split, and store the dataset."""
    from facetopt.services.dataset.command import run_dataset_create
    from facetopt.settings import load_settings

    settings = load_settings(
        env_file,
        warn=warn,
        source_project=source_project,
        target_project=target_project,
        dataset=dataset,
        flush_deadline=flush_deadline,
        source_org=source_org,
        target_org=target_org,
        source_models=source_model,
        ground_truth_model=ground_truth_model,
        ground_truth_api_base=ground_truth_api_base,
        facet_name=facet_name,
        positive_limit=positive_limit,
        negative_limit=negative_limit,
        limit=limit,
        created_after_sql=created_after_sql,
        created_before_sql=created_before_sql,
        extra_where_sql=extra_where_sql,
        ground_truth_concurrency=concurrency,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        max_cost=max_cost,
        call_deadline=call_deadline,
        output_root=output_root,
        backend=backend,
        source_files=",".join(str(p) for p in source_file) if source_file else None,
    )
    summary = run_dataset_create(
        settings,
        root_span_ids=root_span_id,
        root_span_id_file=root_span_id_file,
        skip_upload=skip_upload,
        dry_run=dry_run,
        progress=RichProgress(enabled=True),
        announce=note,
        warn=warn,
    )
    from facetopt.services.next_steps import dataset_create_next_steps

    summary.next_steps = dataset_create_next_steps(summary)
    emit(summary, as_json, lambda console: render_create(console, summary))


def render_upload(console: Console, summary: DatasetUploadSummary) -> None:
    where = "Braintrust" if summary.backend == "braintrust" else "the local store"
    org = f" (org {summary.target_org})" if summary.target_org else ""
    console.print(
        f"{summary.rows} rows from {summary.run_dir} -> {where}: dataset {summary.dataset!r} in project "
        f"{summary.target_project!r}{org}; {summary.written} written, "
        f"{summary.verified} verified by reading back; {summary.existing_rows} of them already in the dataset"
        + (f"; kept {summary.kept_reviewed_labels} reviewed labels" if summary.kept_reviewed_labels else ""),
        highlight=False,
    )
    for message in summary.warnings:
        warn(message)


@app.command("upload")
@handles_errors
def upload_command(
    run_dir: Annotated[
        Path, typer.Option("--run-dir", help="Run folder of `dataset create` (or a run id in --output-root).")
    ],
    target_project: Annotated[
        str | None, typer.Option(help="Project receiving the dataset (default: the run's target project).")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: the run's dataset).")] = None,
    target_org: TargetOrg = None,
    allow_simulated: Annotated[
        bool,
        typer.Option(
            "--allow-simulated",
            help="Upload rows labelled by the simulated model (they are not ground truth).",
        ),
    ] = False,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    flush_deadline: FlushDeadline = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload (or re-upload) a run's dataset_rows.jsonl, then read the dataset back and verify every row."""
    from facetopt.services.dataset.upload import run_dataset_upload
    from facetopt.settings import load_settings

    settings = load_settings(
        env_file,
        warn=warn,
        target_org=target_org,
        flush_deadline=flush_deadline,
        backend=backend,
        output_root=output_root,
    )
    summary = run_dataset_upload(
        settings,
        run_dir=run_dir,
        target_project=target_project,
        dataset=dataset,
        allow_simulated=allow_simulated,
        announce=note,
    )
    emit(summary, as_json, lambda console: render_upload(console, summary))
