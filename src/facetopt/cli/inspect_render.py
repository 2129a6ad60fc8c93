"""How `facetopt inspect` shows its reports as text (with `--json` they print as they are)."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from facetopt.cli.shared.layout import Cell, Column, print_fitted
from facetopt.domain.experiments import ExperimentRecord

if TYPE_CHECKING:
    from facetopt.domain.sql import SqlResult
    from facetopt.services.experiments.inspect import ExperimentsReport, FailuresReport, MetricsReport


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def compact_table(title: str | None = None) -> Table:
    """A table without vertical rules, so wide metric tables fit an 80-column terminal."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)


def describe_experiment(record: ExperimentRecord) -> str:
    split = record.split or "all splits"
    label = f"{record.label}: " if record.label else ""
    return (
        f"{label}{record.experiment_name} ({record.experiment_id}) · {record.backend} · {record.model} · "
        f"dataset {record.dataset} · {split} · {record.created}"
    )


METRICS_LEGEND = (
    "match: binary decision match; recall: positive recall; spec: negative specificity; prec: precision; "
    "Fact: Factuality mean; label: sentiment label accuracy; err: rows errored"
)


_METRIC_COLUMNS = (
    Column("facet", "left"),
    Column("n"),
    Column("TP", keep=3),
    Column("FP", keep=3),
    Column("TN", keep=3),
    Column("FN", keep=3),
    Column("match"),
    Column("recall", keep=1),
    Column("spec", keep=1),
    Column("prec", keep=2),
    Column("F1", keep=4),
    Column("Fact", keep=2),
    Column("label", keep=2),
    Column("err", keep=1),
)


def render_metrics(console: Console, report: MetricsReport) -> None:
    scope = f"split {report.split}" if report.split else "all splits"
    console.print(Text(describe_experiment(report.experiment), style="bold"))
    console.print(Text(f"{scope}, {report.rows} rows"))
    if not report.metrics:
        return
    rows: list[list[Cell]] = [
        [
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
        ]
        for m in report.metrics
    ]
    overall = [i for i, m in enumerate(report.metrics) if m.facet_name == "overall"]
    print_fitted(console, _METRIC_COLUMNS, rows, bold_rows=overall)
    console.print(Text(METRICS_LEGEND, style="dim"))


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def wrapped_field(label: str, text: str, width: int, indent: int = 4) -> list[str]:
    """`label: text` wrapped to width, continuation lines indented under the text; paragraphs kept.
    Words longer than a line (ids, URLs) are never broken: they overflow rather than lose characters."""
    head = " " * indent + f"{label}: "
    rest = " " * len(head)
    lines: list[str] = []
    paragraphs = [p for p in (text or "").splitlines()] or [""]
    for number, paragraph in enumerate(paragraphs):
        first = head if number == 0 else rest
        wrapped = textwrap.wrap(
            paragraph,
            width=max(width, len(first) + 20),
            initial_indent=first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.extend(wrapped or [first.rstrip()])
    return lines


def render_failures(console: Console, report: FailuresReport) -> None:
    """Each failure as a block: its number, kind, split and Factuality, then its id, and the full
    expected and output wrapped to the console's width (never cut)."""
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(report.counts.items()) if count) or "none"
    shown = len(report.failures)
    console.print(Text(describe_experiment(report.experiment), style="bold"))
    console.print(
        Text(
            f"facet {report.facet}, split {report.split or 'all'}, kind {report.kind}: "
            f"{report.matching} of {report.rows} rows failed (by kind: {counts})"
        )
    )
    width = console.width
    for number, failure in enumerate(report.failures, start=1):
        console.print(
            Text.assemble(
                (f"[{number}] {failure.kind}", "bold"),
                f"  split {failure.split or '-'}  Factuality {rate(failure.factuality)}",
            ),
            soft_wrap=True,
        )
        lines = wrapped_field("id", failure.id, width)
        lines += wrapped_field("expected", failure.expected or "", width)
        if failure.error and not failure.output:
            lines += wrapped_field("error", failure.error, width)
        else:
            lines += wrapped_field("output", failure.output or "", width)
        if failure.permalink:
            lines += wrapped_field("trace", failure.permalink, width)
        for line in lines:
            console.print(Text(line), soft_wrap=True)
    if shown < report.matching:
        console.print(
            f"{report.matching - shown} more: raise --limit (0 for all) or use --json", highlight=False
        )


# name (the --name label, else the experiment name), the id's first 8 characters (an id prefix is
# accepted wherever an experiment is named), status and prompt hashes (one facet a line) stay at 80
# columns; --json has every field whole.
_EXPERIMENT_COLUMNS = (
    Column("created", "left", keep=3),
    Column("name", "left"),
    Column("id", "left"),
    Column("status", "left"),
    Column("split", "left", keep=1),
    Column("rows", keep=2),
    Column("errors", keep=4),
    Column("prompts", "left"),
    Column("model", "left", keep=5),
    Column("dataset", "left", keep=6),
    Column("backend", "left", keep=7),
    Column("ran by", "left", keep=8),
)
SHORT_ID = 8


def run_status(record: ExperimentRecord) -> str:
    return "superseded" if record.superseded_by else record.status


def ran_by(record: ExperimentRecord) -> str:
    """Who ran it: this machine's facetopt (in the registry), facetopt elsewhere, or something else."""
    if record.in_registry:
        return "mine"
    return "facetopt" if record.by_facetopt else "other"


def render_experiments(console: Console, report: ExperimentsReport) -> None:
    if report.project:
        console.print(
            Text(f"project {report.project!r} (Braintrust) and this machine's registry", style="dim")
        )
    if not report.experiments:
        console.print("no experiments yet: run `facetopt eval`", highlight=False)
        return
    rows: list[list[Cell]] = []
    for r in report.experiments:
        prompts = "\n".join(f"{name} {sha[:8]}" for name, sha in sorted(r.prompt_hashes.items()))
        rows.append(
            [
                r.created[:19].replace("T", " "),
                Text(r.label or r.experiment_name),
                Text(r.experiment_id[:SHORT_ID]),
                run_status(r),
                r.split or "all",
                "-" if r.row_count is None else str(r.row_count),
                "-" if r.error_count is None else str(r.error_count),
                Text(prompts or "-"),
                Text(r.model),
                Text(r.dataset),
                r.backend,
                ran_by(r),
            ]
        )
    print_fitted(console, _EXPERIMENT_COLUMNS, rows, title="experiments, newest first")
    if report.more:
        console.print(
            Text(
                f"older experiments exist: raise --limit (now {report.limit}) or pass --limit 0 for all",
                style="dim",
            )
        )
    unfinished = [r for r in report.experiments if not r.complete]
    if unfinished:
        console.print(
            Text(
                f"{len(unfinished)} run(s) not complete: `latest` and `previous` pass over them and the "
                "validation budget does not count them (--json: status_cause says why)",
                style="dim",
            )
        )
    for status in report.test_splits:
        flag = " (over the two allowed: baseline and final candidate)" if status.overused else ""
        console.print(f"{status.describe()}{flag}", highlight=False)
    render_comparisons(console, report)


_COMPARISON_COLUMNS = (
    Column("created", "left", keep=3),
    Column("baseline", "left", keep=2),
    Column("candidate", "left"),
    Column("split", "left", keep=4),
    Column("target", "left", keep=5),
    Column("verdicts", "left"),
)


def render_comparisons(console: Console, report: ExperimentsReport) -> None:
    if not report.comparisons:
        return
    rows: list[list[Cell]] = []
    for c in report.comparisons:
        verdicts = ", ".join(f"{d.facet_name} {d.verdict}" for d in c.decisions)
        rows.append(
            [
                c.created[:19].replace("T", " "),
                Text(c.baseline_experiment_name),
                Text(c.candidate_experiment_name),
                c.split or "all",
                c.target,
                Text(verdicts),
            ]
        )
    print_fitted(console, _COMPARISON_COLUMNS, rows, title="comparisons, newest first")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def render_sql(console: Console, result: SqlResult) -> None:
    table = Table()
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*(Text(cell(row.get(column))) for column in result.columns))
    console.print(table)
    console.print(f"{len(result.rows)} rows ({result.backend})", highlight=False)
