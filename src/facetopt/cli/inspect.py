"""`facetopt inspect ...`: metrics, failures, dataset balance, the experiment registry and raw SQL."""

# No `from __future__ import annotations` here: handles_errors copies the signature as is,
# and Typer needs real (evaluated) Annotated types to see the option names and help.

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from facetopt.cli.dataset import render_balance
from facetopt.cli.options import Backend, EnvFile, JsonFlag, OutputRoot
from facetopt.cli.output import emit, handles_errors, note, warn
from facetopt.domain.experiments import ExperimentRecord

if TYPE_CHECKING:  # the services load when a command runs, so `facetopt --help` stays quick
    from facetopt.services.inspect import ExperimentsReport, FailuresReport, MetricsReport, SqlResult

app = typer.Typer(
    help="Look at experiments, failures, dataset balance and raw SQL.",
    no_args_is_help=True,
)

ExperimentArg = Annotated[
    str, typer.Argument(help="Experiment id, name (newest of that name), latest or previous.")
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset", help="Dataset whose runs latest/previous choose among. Env FACET_OPTIMIZER_DATASET."
    ),
]
TargetProjectOpt = Annotated[
    str | None,
    typer.Option("--target-project", help="Project holding the dataset. Env FACET_OPTIMIZER_TARGET_PROJECT."),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="latest/previous choose among runs of this model.")
]
FacetOpt = Annotated[str | None, typer.Option("--facet", help="Only this facet (case-insensitive).")]


def flags(
    backend: str | None,
    output_root: Path | None,
    dataset: str | None = None,
    target_project: str | None = None,
) -> dict[str, Any]:
    return dict(backend=backend, output_root=output_root, dataset=dataset, target_project=target_project)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def compact_table(title: str | None = None) -> Table:
    """A table without vertical rules, so wide metric tables fit an 80-column terminal."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)


def describe_experiment(record: ExperimentRecord) -> str:
    split = record.split or "all splits"
    return (
        f"{record.experiment_name} ({record.experiment_id}) · {record.backend} · {record.model} · "
        f"dataset {record.dataset} · {split} · {record.created}"
    )


def print_notes(notes: list[str]) -> None:
    for message in notes:
        warn(message)


# -- metrics ---------------------------------------------------------------------------------------


METRICS_LEGEND = (
    "match: binary decision match; recall: positive recall; spec: negative specificity; prec: precision; "
    "Fact: Factuality mean; label: sentiment label accuracy; err: rows errored"
)


def render_metrics(console: Console, report: "MetricsReport") -> None:
    scope = f"split {report.split}" if report.split else "all splits"
    console.print(Text(describe_experiment(report.experiment), style="bold"))
    console.print(Text(f"{scope}, {report.rows} rows"))
    if not report.metrics:
        return
    table = compact_table()
    headers = (
        "facet",
        "n",
        "TP",
        "FP",
        "TN",
        "FN",
        "match",
        "recall",
        "spec",
        "prec",
        "F1",
        "Fact",
        "label",
        "err",
    )
    for header in headers:
        table.add_column(header, justify="left" if header == "facet" else "right", no_wrap=header != "facet")
    for m in report.metrics:
        table.add_row(
            Text(m.facet_name),
            str(m.n),
            str(m.tp),
            str(m.fp),
            str(m.tn),
            str(m.fn),
            rate(m.binary_decision_match),
            rate(m.positive_recall),
            rate(m.negative_specificity),
            rate(m.precision),
            rate(m.f1),
            rate(m.factuality),
            rate(m.sentiment_label_accuracy),
            f"[red]{m.errored}[/red]" if m.errored else "0",
            style="bold" if m.facet_name == "overall" else None,
        )
    console.print(table)
    console.print(Text(METRICS_LEGEND, style="dim"))


@app.command("metrics")
@handles_errors
def metrics_command(
    experiment: ExperimentArg = "latest",
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="Only rows of this split (default all); latest/previous pick a run on it."
        ),
    ] = None,
    facet: FacetOpt = None,
    model: ModelOpt = None,
    dataset: DatasetOpt = None,
    target_project: TargetProjectOpt = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Per facet and overall: n, TP/FP/TN/FN, match, recall, specificity, precision, F1, Factuality,
    sentiment label accuracy and rows errored."""
    from facetopt.services.experiments import open_experiments
    from facetopt.services.inspect import inspect_metrics

    with open_experiments(
        env_file, flags(backend, output_root, dataset, target_project), note
    ) as experiments:
        report = inspect_metrics(experiments, experiment, split=split, facet=facet, model=model)
    print_notes(report.notes)
    emit(report, as_json, lambda console: render_metrics(console, report))


# -- failures --------------------------------------------------------------------------------------


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def trimmed(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def render_failures(console: Console, report: "FailuresReport") -> None:
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(report.counts.items())) or "none"
    shown = len(report.failures)
    console.print(Text(describe_experiment(report.experiment), style="bold"))
    console.print(
        Text(
            f"facet {report.facet}, split {report.split or 'all'}, kind {report.kind}: "
            f"{report.matching} of {report.rows} rows failed (by kind: {counts})"
        )
    )
    if not report.failures:
        return
    id_width = min(max(len(f.id) for f in report.failures), 24)
    # 7 columns: 8 rules and 2 spaces of padding each; '#', split, kind and Factuality take 22
    texts_width = max(20, console.width - 22 - id_width - 22)
    longest_expected = max(len(one_line(f.expected)) for f in report.failures)
    expected_width = max(8, min(longest_expected, texts_width // 2))
    text_width = max(10, texts_width - expected_width)
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("id", overflow="fold", max_width=id_width)
    table.add_column("split", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("expected", no_wrap=True, max_width=expected_width)
    table.add_column("output", no_wrap=True, max_width=text_width)
    table.add_column("Fact.", justify="right", no_wrap=True)
    for number, failure in enumerate(report.failures, start=1):
        output = Text(trimmed(one_line(failure.output), text_width))
        if failure.error and not failure.output:
            output = Text.assemble(("error: ", "red"), trimmed(one_line(failure.error), text_width - 7))
        table.add_row(
            str(number),
            Text(failure.id),
            Text(failure.split or "-"),
            failure.kind,
            Text(trimmed(one_line(failure.expected), expected_width)),
            output,
            rate(failure.factuality),
        )
    console.print(table)
    for number, failure in enumerate(report.failures, start=1):
        if failure.permalink:
            console.print(Text(f"[{number}] {failure.permalink}"), soft_wrap=True)
    if shown < report.matching:
        console.print(
            f"{report.matching - shown} more: raise --limit (0 for all) or use --json", highlight=False
        )


@app.command("failures")
@handles_errors
def failures_command(
    facet: Annotated[str, typer.Option("--facet", help="Facet to list failures of (case-insensitive).")],
    experiment: ExperimentArg = "latest",
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="fp (false positives), fn (false negatives), label (sentiment label wrong, decision right) "
            "or any.",
        ),
    ] = "any",
    split: Annotated[
        str,
        typer.Option(
            "--split", help="Split to look at (diagnose on validation, edit on train); all for every."
        ),
    ] = "validation",
    limit: Annotated[int, typer.Option("--limit", help="Failures to list (0 for all).")] = 20,
    model: ModelOpt = None,
    dataset: DatasetOpt = None,
    target_project: TargetProjectOpt = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Failing rows of one facet: id, split, expected, output, Factuality and the source trace permalink."""
    from facetopt.services.experiments import open_experiments
    from facetopt.services.inspect import inspect_failures

    with open_experiments(
        env_file, flags(backend, output_root, dataset, target_project), note
    ) as experiments:
        report = inspect_failures(
            experiments, experiment, facet, kind=kind, split=split, limit=limit, model=model
        )
    print_notes(report.notes)
    emit(report, as_json, lambda console: render_failures(console, report))


# -- dataset ---------------------------------------------------------------------------------------


@app.command("dataset")
@handles_errors
def dataset_command(
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset name. Env FACET_OPTIMIZER_DATASET.")
    ] = None,
    target_project: TargetProjectOpt = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """The dataset's balance per facet: rows, positives, negatives, train, validation (as dataset create)."""
    from facetopt.services.experiments import open_experiments
    from facetopt.services.inspect import inspect_dataset

    with open_experiments(
        env_file, flags(backend, output_root, dataset, target_project), note
    ) as experiments:
        report = inspect_dataset(experiments)
    print_notes(report.warnings)
    emit(report, as_json, lambda console: render_balance(console, report))


# -- experiments -----------------------------------------------------------------------------------


def render_experiments(console: Console, report: "ExperimentsReport") -> None:
    if not report.experiments:
        console.print("no experiments yet: run `facetopt eval`", highlight=False)
        return
    table = compact_table(title="experiments, newest first")
    for header in (
        "created",
        "name",
        "id",
        "backend",
        "model",
        "dataset",
        "split",
        "rows",
        "errors",
        "prompts",
    ):
        table.add_column(header, justify="right" if header in ("rows", "errors") else "left")
    for r in report.experiments:
        prompts = ", ".join(f"{name} {sha[:8]}" for name, sha in sorted(r.prompt_hashes.items()))
        table.add_row(
            r.created[:19].replace("T", " "),
            Text(r.experiment_name),
            r.experiment_id,
            r.backend,
            r.model,
            r.dataset,
            r.split or "all",
            str(r.row_count),
            str(r.error_count),
            prompts or "-",
        )
    console.print(table)


@app.command("experiments")
@handles_errors
def experiments_command(
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="Only runs of this backend (braintrust or local); default all."),
    ] = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """The experiment registry (every eval run), newest first."""
    from facetopt.services.experiments import open_experiments
    from facetopt.services.inspect import inspect_experiments

    with open_experiments(env_file, flags(backend, output_root), lambda _: None) as experiments:
        report = inspect_experiments(experiments, backend=backend)
    emit(report, as_json, lambda console: render_experiments(console, report))


# -- sql -------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def render_sql(console: Console, result: "SqlResult") -> None:
    table = Table()
    for column in result.columns:
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=80)
    for row in result.rows:
        table.add_row(*(Text(cell(row.get(column))) for column in result.columns))
    console.print(table)
    console.print(f"{len(result.rows)} rows ({result.backend})", highlight=False)


@app.command("sql")
@handles_errors
def sql_command(
    query: Annotated[
        str, typer.Argument(help="SQL in Braintrust's dialect, e.g. SELECT ... FROM dataset('<name>').")
    ],
    dataset: DatasetOpt = None,
    target_project: TargetProjectOpt = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Run SQL: through /btql on Braintrust; in DuckDB over the local store on the local backend."""
    from facetopt.services.experiments import open_experiments
    from facetopt.services.inspect import inspect_sql

    with open_experiments(
        env_file, flags(backend, output_root, dataset, target_project), note
    ) as experiments:
        result = inspect_sql(experiments, query)
    print_notes(result.notes)
    if result.cursor:
        note(f"more rows exist: add OFFSET '{result.cursor}' to read the next page")
    emit(result, as_json, lambda console: render_sql(console, result))
