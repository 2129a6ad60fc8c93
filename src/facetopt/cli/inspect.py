"""`facetopt inspect ...`: metrics, failures, dataset balance, the experiment registry and raw SQL."""

# No `from __future__ import annotations` here: handles_errors copies the signature as is,
# and Typer needs real (evaluated) Annotated types to see the option names and help.

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facetopt.cli.dataset import render_balance
from facetopt.cli.inspect_render import render_experiments, render_failures, render_metrics, render_sql
from facetopt.cli.shared.options import (
    Backend,
    DatasetName,
    EnvFile,
    FacetFilter,
    JsonFlag,
    OutputRoot,
    RunsDataset,
    RunsModel,
    RunsTargetProject,
)
from facetopt.cli.shared.output import emit, handles_errors, note, warn

if TYPE_CHECKING:  # the service loads when a command runs, so `facetopt --help` stays quick
    from facetopt.services.experiments.registry import Experiments

app = typer.Typer(
    help="Look at experiments, failures, dataset balance and raw SQL.",
    no_args_is_help=True,
)

ExperimentArg = Annotated[
    str,
    typer.Argument(
        help="Experiment id, id prefix, name (newest of that name), latest or previous; on Braintrust "
        "any experiment of the project."
    ),
]


def experiments_for(
    env_file: Path | None,
    backend: str | None,
    output_root: Path | None,
    dataset: str | None = None,
    target_project: str | None = None,
    announce: Callable[[str], None] = note,
) -> "AbstractContextManager[Experiments]":
    """The experiments (and dataset) these flags point at, open for one `with` block."""
    from facetopt.services.experiments.registry import open_experiments
    from facetopt.settings import load_settings

    settings = load_settings(
        env_file,
        warn=warn,
        backend=backend,
        output_root=output_root,
        dataset=dataset,
        target_project=target_project,
    )
    return open_experiments(settings, announce)


def print_notes(notes: list[str]) -> None:
    for message in notes:
        warn(message)


# -- metrics ---------------------------------------------------------------------------------------


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
    facet: FacetFilter = None,
    reviewed: Annotated[
        bool,
        typer.Option("--reviewed", help="Only rows whose label a person decided (`dataset review apply`)."),
    ] = False,
    model: RunsModel = None,
    dataset: RunsDataset = None,
    target_project: RunsTargetProject = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Per facet and overall: n, TP/FP/TN/FN, match, recall, specificity, precision, F1, Factuality,
    sentiment label accuracy and rows errored."""
    from facetopt.facets.data.selection import parse_splits
    from facetopt.services.experiments.inspect import inspect_metrics

    parse_splits(split)
    with experiments_for(env_file, backend, output_root, dataset, target_project) as experiments:
        report = inspect_metrics(
            experiments, experiment, split=split, facet=facet, model=model, reviewed=reviewed
        )
    print_notes(report.notes)
    emit(report, as_json, lambda console: render_metrics(console, report))


# -- failures --------------------------------------------------------------------------------------


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
    force: Annotated[
        bool,
        typer.Option("--force", help="List test rows for a third prompt version of the facet (recorded)."),
    ] = False,
    model: RunsModel = None,
    dataset: RunsDataset = None,
    target_project: RunsTargetProject = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Failing rows of one facet: id, split, expected, output, Factuality and the source trace permalink."""
    from facetopt.facets.data.selection import parse_splits
    from facetopt.services.experiments.holdout import failures_touch
    from facetopt.services.experiments.inspect import inspect_failures

    parse_splits(split)  # "unknown split" before anything is opened
    with experiments_for(env_file, backend, output_root, dataset, target_project) as experiments:
        report = inspect_failures(
            experiments, experiment, facet, kind=kind, split=split, limit=limit, model=model
        )
        settings = experiments.settings
    report.notes += failures_touch(settings, report.experiment, facet, report.test_rows, force)
    print_notes(report.notes + report.warnings)
    emit(report, as_json, lambda console: render_failures(console, report))


# -- dataset ---------------------------------------------------------------------------------------


@app.command("dataset")
@handles_errors
def dataset_command(
    dataset: DatasetName = None,
    target_project: RunsTargetProject = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """The dataset's balance per facet: rows, positives, negatives, train, validation (as dataset create)."""
    from facetopt.services.experiments.inspect import inspect_dataset

    with experiments_for(env_file, backend, output_root, dataset, target_project) as experiments:
        report = inspect_dataset(experiments)
    print_notes(report.warnings)
    emit(report, as_json, lambda console: render_balance(console, report))


# -- experiments -----------------------------------------------------------------------------------


@app.command("experiments")
@handles_errors
def experiments_command(
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="braintrust: the project's experiments (whoever ran them) merged with the registry; "
            "local: the registry's local runs. Default: braintrust when BRAINTRUST_API_KEY is set, "
            "else the whole registry.",
        ),
    ] = None,
    mine: Annotated[
        bool, typer.Option("--mine", help="Only runs from this machine's registry (this --output-root).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="The newest so many experiments (0 for all).")] = 50,
    target_project: Annotated[
        str | None,
        typer.Option(
            "--target-project",
            help="Braintrust project whose experiments to list (default: FACET_OPTIMIZER_EVAL_PROJECT, "
            "else the target project).",
        ),
    ] = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Experiments newest first: name, id, created, who ran them, model, dataset, split, rows, prompt
    hashes. On Braintrust the project's experiments, merged with this machine's registry."""
    from facetopt.services.experiments.inspect import inspect_experiments

    with experiments_for(
        env_file, backend, output_root, target_project=target_project, announce=lambda _: None
    ) as experiments:
        report = inspect_experiments(experiments, backend=backend, mine=mine, limit=limit)
    print_notes(report.notes)
    emit(report, as_json, lambda console: render_experiments(console, report))


# -- sql -------------------------------------------------------------------------------------------


@app.command("sql")
@handles_errors
def sql_command(
    query: Annotated[
        str, typer.Argument(help="SQL in Braintrust's dialect, e.g. SELECT ... FROM dataset('<name>').")
    ],
    dataset: RunsDataset = None,
    target_project: RunsTargetProject = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Run SQL: through /btql on Braintrust; in DuckDB over the local store on the local backend."""
    from facetopt.services.experiments.inspect import inspect_sql

    with experiments_for(env_file, backend, output_root, dataset, target_project) as experiments:
        result = inspect_sql(experiments, query)
    print_notes(result.notes)
    if result.cursor:
        note(f"more rows exist: add OFFSET '{result.cursor}' to read the next page")
    emit(result, as_json, lambda console: render_sql(console, result))
