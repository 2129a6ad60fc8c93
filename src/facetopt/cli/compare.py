"""`facetopt compare BASELINE CANDIDATE`: per-facet deltas, intervals and a verdict."""

# No `from __future__ import annotations` here: handles_errors copies the signature as is,
# and Typer needs real (evaluated) Annotated types to see the option names and help.

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from facetopt.cli.inspect import experiments_for
from facetopt.cli.inspect_render import describe_experiment, rate
from facetopt.cli.report import write_compare_page
from facetopt.cli.shared.layout import Cell, Column, print_fitted
from facetopt.cli.shared.options import (
    Backend,
    EnvFile,
    FacetFilter,
    JsonFlag,
    OutputRoot,
    RunsDataset,
    RunsModel,
    RunsTargetProject,
)
from facetopt.cli.shared.output import WrappingConsole, emit, handles_errors, warn
from facetopt.domain.experiments import FacetComparison, MetricDelta

if TYPE_CHECKING:  # the service loads when the command runs, so `facetopt --help` stays quick
    from facetopt.services.experiments.compare import CompareReport

VERDICT_STYLE = {"KEEP": "bold green", "REJECT": "bold red", "INCONCLUSIVE": "bold yellow"}
METRIC_LABELS = {
    "binary_decision_match": "match",
    "positive_recall": "recall",
    "negative_specificity": "specificity",
    "precision": "precision",
    "sentiment_label_correct": "label acc",
    "Factuality": "Factuality",
}
TARGET_METRIC = {
    "balanced": "binary_decision_match",
    "precision": "negative_specificity",
    "recall": "positive_recall",
}


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def interval(delta: MetricDelta) -> str:
    if delta.ci_low is None or delta.ci_high is None:
        return "-"
    return f"[{delta.ci_low:.3f}, {delta.ci_high:.3f}]"


def p_value(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def verdict_text(comparison: FacetComparison) -> Text:
    return Text(comparison.verdict, style=VERDICT_STYLE[comparison.verdict])


def delta_of(comparison: FacetComparison, metric: str) -> MetricDelta:
    return next((d for d in comparison.deltas if d.metric == metric), MetricDelta(metric=metric))


SUMMARY_LEGEND = (
    "b/c: the judged metric's discordant pairs (only the baseline right / only the candidate right), "
    "p their exact two-sided McNemar p-value; +rows: paired rows likely still needed to settle an "
    "INCONCLUSIVE verdict"
)


# lower `keep` is kept longer when the width is short; a column is dropped whole, never cut
SUMMARY_COLUMNS = [
    Column("facet", justify="left"),
    Column("rows", keep=2),
    Column("base", keep=4),
    Column("cand", keep=4),
    Column("delta"),
    Column("95% CI"),
    Column("b/c", keep=5),
    Column("p", keep=5),
    Column("verdict", justify="left"),
    Column("+rows", keep=3),
]
DETAIL_COLUMNS = [
    Column("metric", justify="left"),
    Column("baseline", keep=2),
    Column("candidate", keep=2),
    Column("delta"),
    Column("95% CI"),
    Column("n", keep=3),
]


def render_summary(console: Console, report: "CompareReport") -> None:
    target_metric = TARGET_METRIC[report.target]
    comparisons = [*report.facets, report.overall] if len(report.facets) > 1 else report.facets
    rows: list[list[Cell]] = []
    for comparison in comparisons:
        target = delta_of(comparison, target_metric)
        rows.append(
            [
                Text(comparison.facet_name),
                str(comparison.paired_rows),
                rate(target.baseline),
                rate(target.candidate),
                signed(target.delta),
                interval(target),
                f"{comparison.mcnemar_b}/{comparison.mcnemar_c}",
                p_value(comparison.mcnemar_p),
                verdict_text(comparison),
                "-" if comparison.rows_needed is None else str(comparison.rows_needed),
            ]
        )
    print_fitted(
        console,
        SUMMARY_COLUMNS,
        rows,
        title=f"verdicts (target {report.target}: {METRIC_LABELS[target_metric]})",
        bold_rows=[i for i, c in enumerate(comparisons) if c.facet_name == "overall"],
    )
    console.print(Text(SUMMARY_LEGEND, style="dim"))


def render_detail(console: Console, comparison: FacetComparison) -> None:
    title = Text.assemble(
        f"{comparison.facet_name}: {comparison.paired_rows} paired rows, ", verdict_text(comparison)
    )
    console.print(title)
    rows: list[list[Cell]] = [
        [
            METRIC_LABELS.get(delta.metric, delta.metric),
            rate(delta.baseline),
            rate(delta.candidate),
            signed(delta.delta),
            interval(delta),
            str(delta.n),
        ]
        for delta in comparison.deltas
        if delta.n
    ]
    print_fitted(console, DETAIL_COLUMNS, rows)
    for reason in comparison.reasons:
        console.print(Text(f"  - {reason}"))


def render_prompt_diffs(console: Console, report: "CompareReport") -> None:
    for diff in report.prompt_diffs:
        if not diff.changed:
            sha = diff.candidate_sha[:12] if diff.candidate_sha else "-"
            console.print(Text(f"prompt {diff.facet_name}: unchanged ({sha})", style="dim"))
            continue
        console.print(Text(f"prompt {diff.facet_name}: changed", style="bold"))
        if diff.note:
            console.print(Text(f"  {diff.note}", style="yellow"))
        for line in (diff.diff or "").splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            if line.startswith(("+++", "---", "@@")):
                style = "cyan"
            # a diff line longer than the width continues at column 0: a line that starts with
            # none of "+- @" is the previous line's continuation
            text = Text(line, style=style or "")
            if isinstance(console, WrappingConsole):
                console.print(text, hang=0)
            else:
                console.print(text, soft_wrap=True)


def render_compare(console: Console, report: "CompareReport") -> None:
    console.print(Text(f"baseline:  {describe_experiment(report.baseline)}"))
    console.print(Text(f"candidate: {describe_experiment(report.candidate)}"))
    left_out = ""
    if report.baseline_only or report.candidate_only:
        left_out = f" ({report.baseline_only} baseline-only, {report.candidate_only} candidate-only left out)"
    if report.label_changed:
        left_out += f" ({report.label_changed} left out: label changed between the runs)"
    if report.folded_rows:
        left_out += f" ({report.folded_rows} duplicate-conversation rows folded: each group counts once)"
    unchecked = f", not checked: {', '.join(report.no_guard)}" if report.no_guard else ""
    console.print(
        Text(
            f"split {report.split or 'all'}, {report.paired_rows} paired rows{left_out}; "
            f"guard margin {report.guard_margin:g}{unchecked}; "
            f"bootstrap {report.iterations} resamples, seed {report.seed}"
        )
    )
    for line in report.notes:
        console.print(Text(line, style="bold"))
    render_summary(console, report)
    for comparison in report.facets:
        render_detail(console, comparison)
    if len(report.facets) > 1:
        render_detail(console, report.overall)
    render_prompt_diffs(console, report)


@handles_errors
def compare_command(
    baseline: Annotated[str, typer.Argument(help="Baseline experiment: id, name, latest or previous.")],
    candidate: Annotated[str, typer.Argument(help="Candidate experiment: id, name, latest or previous.")],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="balanced (binary decision match), precision (fewer false positives) or recall "
            "(fewer false negatives).",
        ),
    ] = "balanced",
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="Rows compared, and the split latest/previous choose by; all for every; test for the "
            "one final check (the verdict without advice to iterate).",
        ),
    ] = "validation",
    facet: FacetFilter = None,
    guard_margin: Annotated[
        float,
        typer.Option(
            "--guard-margin",
            "--tolerance",
            help="How far a guard may fall: KEEP needs each guard's 95% interval above -margin; "
            "REJECT when it lies below. --tolerance is its older name.",
        ),
    ] = 0.05,
    no_guard: Annotated[
        list[str] | None,
        typer.Option(
            "--no-guard",
            help="Do not check this guard (repeatable; e.g. Factuality when no judge scored the rows). "
            "The verdict records it.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the paired bootstrap.")] = 0,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the decision page (as `facetopt report`) to this file."),
    ] = None,
    model: RunsModel = None,
    dataset: RunsDataset = None,
    target_project: RunsTargetProject = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Pair two experiments' rows by dataset row id; per facet and overall: deltas, 95% intervals, McNemar,
    and a verdict (KEEP, REJECT or INCONCLUSIVE)."""
    from facetopt.facets.data.selection import parse_splits
    from facetopt.facets.decide.verdict import check_guard_margin, resolve_no_guard
    from facetopt.services.experiments.compare import compare_experiments
    from facetopt.services.experiments.decisions import record_comparison
    from facetopt.services.next_steps import compare_next_steps
    from facetopt.services.report import report_for_compare

    check_guard_margin(guard_margin)
    resolve_no_guard(target, no_guard or [])
    parse_splits(split)  # "unknown split" before anything is opened
    if html is not None:
        from facetopt.services.report import check_page_path

        check_page_path(html, "--html")
    with experiments_for(env_file, backend, output_root, dataset, target_project) as experiments:
        store_path = experiments.settings.store_path
        report = compare_experiments(
            experiments,
            baseline,
            candidate,
            target=target,
            split=split,
            facet=facet,
            guard_margin=guard_margin,
            seed=seed,
            model=model,
            no_guard=no_guard or [],
        )
        page = report_for_compare(experiments, report) if html is not None else None
    report = record_comparison(store_path, report)
    if page is not None and html is not None:
        write_compare_page(page.model_copy(update={"compare": report}), report.comparison_id, html)
    for message in report.warnings:
        warn(message)
    report.next_steps = compare_next_steps(report)
    emit(report, as_json, lambda console: render_compare(console, report))
