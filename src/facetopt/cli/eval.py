"""`facetopt eval`: run the facet model over the dataset through `bt eval` and print per-facet scores."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from facetopt.cli.inspect_render import rate
from facetopt.cli.shared.layout import Cell, Column, print_fitted
from facetopt.cli.shared.options import Backend, DatasetName, EnvFile, JsonFlag, MaxCost, OutputRoot
from facetopt.cli.shared.output import emit, handles_errors, note, warn
from facetopt.cli.shared.progress import RichProgress
from facetopt.facets.decide.cost import describe_usage
from facetopt.services.eval.run import EvalSummary

_COLUMNS = (
    (Column("facet", "left"), None),
    (Column("n"), None),
    (Column("match"), "binary_decision_match"),
    (Column("recall", keep=2), "positive_recall"),
    (Column("specificity", keep=2), "negative_specificity"),
    (Column("precision", keep=4), "precision"),
    (Column("sentiment", keep=5), "sentiment_label_accuracy"),
    (Column("Factuality", keep=3), "factuality"),
    (Column("errors", keep=1), None),
)


def render_eval(console: Console, summary: EvalSummary) -> None:
    label = f"{summary.label}: " if summary.label else ""
    title = f"{label}{summary.experiment_name} ({summary.backend}, {summary.runner})"
    rows: list[list[Cell]] = []
    for m in summary.metrics:
        cells: list[Cell] = [Text(m.facet_name), str(m.n)]
        cells += [rate(getattr(m, attr)) for _, attr in _COLUMNS[2:-1]]
        cells.append(str(m.errored))
        rows.append(cells)
    overall = [i for i, m in enumerate(summary.metrics) if m.facet_name == "overall"]
    print_fitted(console, [c for c, _ in _COLUMNS], rows, title=title, bold_rows=overall)
    simulated = f" [bold yellow]SIMULATED: {', '.join(summary.simulated_roles)}[/bold yellow]"
    console.print(
        f"model {summary.model} ({summary.model_endpoint}), "
        f"judge {summary.judge_model} ({summary.judge_endpoint})"
        + (simulated if summary.simulated_roles else ""),
        highlight=False,
    )
    split = summary.split or "all splits"
    console.print(
        f"{summary.rows} rows ({split}) x {summary.trials} trial(s), {summary.errors} failed, "
        f"{summary.seconds:.1f}s; experiment {summary.experiment_id}",
        highlight=False,
    )
    for usage in summary.usage:
        console.print(describe_usage(usage), highlight=False)
    if summary.validation_evals:
        looks = ", ".join(f"{facet} {n}" for facet, n in sorted(summary.validation_evals.items()))
        console.print(
            f"validation evals of {summary.dataset!r} so far: {looks} (budget about 5)", highlight=False
        )
    if summary.model_outputs_from_cache or summary.judge_verdicts_from_cache:
        console.print(
            f"from the cache: {summary.model_outputs_from_cache} model outputs, "
            f"{summary.judge_verdicts_from_cache} Factuality verdicts (--no-cache calls again)",
            highlight=False,
        )
    for failed in summary.failed_rows:
        console.print(f"  failed {failed['id']}: {failed['error']}", highlight=False)
    if summary.url:
        console.print(f"url: {summary.url}", highlight=False)
    console.print(f"artifacts: {summary.run_dir}", highlight=False)


@handles_errors
def eval_command(
    model: Annotated[
        str | None,
        typer.Option(help="Facet model to evaluate (default brain-facet-1). Env FACET_OPTIMIZER_MODEL."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="train, validation or test (default: train and validation; the test split is read only "
            "when named). Env FACET_OPTIMIZER_SPLIT."
        ),
    ] = None,
    facet: Annotated[list[str] | None, typer.Option(help="Only this facet (repeatable).")] = None,
    max_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="First N rows (N at least 1) after the filters, in row-id order. "
            "Env FACET_OPTIMIZER_MAX_ROWS (there 0 means every row, as in the original scripts).",
        ),
    ] = None,
    row_id: Annotated[list[str] | None, typer.Option(help="Only this dataset row id (repeatable).")] = None,
    dataset: DatasetName = None,
    dataset_project: Annotated[
        str | None,
        typer.Option(
            help="Project holding the dataset (default the eval project). Env FACET_OPTIMIZER_DATASET_PROJECT."
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            help="Project receiving the experiment (default the target project). Env FACET_OPTIMIZER_EVAL_PROJECT."
        ),
    ] = None,
    target_project: Annotated[
        str | None, typer.Option(help="Target project (default for --dataset-project and --project).")
    ] = None,
    prompt: Annotated[
        Path | None, typer.Option(help="Prompt file (default <output-root>/facet_definitions.yaml).")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Rows in flight (default 16; brain-facet-2 4). Env FACET_OPTIMIZER_MAX_CONCURRENCY."
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            help="Runs per row; a row's score is the mean (default 1). Env FACET_OPTIMIZER_TRIAL_COUNT."
        ),
    ] = None,
    experiment_name: Annotated[
        str | None, typer.Option(help="Experiment name (default <prefix>-<model>, prefix facet-optimizer).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="A label for this run (e.g. baseline): shown in `inspect experiments`, kept in the "
            "experiment's metadata, and accepted wherever an experiment is named (the newest run with it).",
        ),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="Factuality judge model (default gpt-5.4).")] = None,
    api_base: Annotated[
        str | None,
        typer.Option(
            help="Facet model base URL (default the Braintrust proxy); simulated:// forces the simulation."
        ),
    ] = None,
    judge_api_base: Annotated[
        str | None,
        typer.Option(help="Judge base URL (default the Braintrust proxy); simulated:// simulates it."),
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Facet model max tokens (default 20000).")] = None,
    request_timeout: Annotated[
        float | None, typer.Option(help="Seconds per model request (default 120; brain-facet-2 300).")
    ] = None,
    call_deadline: Annotated[
        float | None,
        typer.Option(
            help="Seconds one model call may keep being retried (429s, 5xx, timeouts; default 600). "
            "Env FACET_OPTIMIZER_CALL_DEADLINE."
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Call the facet model and judge again instead of reusing cached outputs and verdicts.",
        ),
    ] = False,
    no_send_logs: Annotated[
        bool, typer.Option("--no-send-logs", help="Do not log to Braintrust; store the experiment locally.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Read the test split for a third prompt version of a facet (recorded)."),
    ] = False,
    max_cost: MaxCost = None,
    flush_deadline: Annotated[
        float | None,
        typer.Option(
            help="Seconds the runner has to send its logs to Braintrust once every row is scored "
            "(default 300). Env FACET_OPTIMIZER_FLUSH_DEADLINE."
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Log the scored rows of an unfinished eval run (its folder name under "
            "<output-root>/evals, or path) to Braintrust, evaluating only rows it lacks."
        ),
    ] = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the facet model over the dataset (through `bt eval`), score it, and record the experiment."""
    from facetopt.services.eval.run import EvalOptions, run_eval
    from facetopt.services.next_steps import eval_next_steps
    from facetopt.settings import load_settings

    settings = load_settings(
        env_file,
        warn=warn,
        model=model,
        split=split,
        max_rows=max_rows,
        dataset=dataset,
        dataset_project=dataset_project,
        project=project,
        target_project=target_project,
        prompt=prompt,
        concurrency=concurrency,
        trials=trials,
        judge_model=judge_model,
        api_base=api_base,
        judge_api_base=judge_api_base,
        max_tokens=max_tokens,
        request_timeout=request_timeout,
        call_deadline=call_deadline,
        max_cost=max_cost,
        use_cache=False if no_cache else None,
        flush_deadline=flush_deadline,
        backend=backend,
        output_root=output_root,
    )
    summary = run_eval(
        settings,
        options=EvalOptions(
            facets=list(facet or []),
            row_ids=list(row_id or []),
            no_send_logs=no_send_logs,
            experiment_name=experiment_name,
            label=name,
            force=force,
            resume=resume,
        ),
        progress=RichProgress(enabled=True),
        announce=note,
        warn=warn,
    )
    summary.next_steps = eval_next_steps(summary)
    emit(summary, as_json, lambda console: render_eval(console, summary))
