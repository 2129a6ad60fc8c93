"""How `facetopt inspect` shows its reports as text (with `--json` they print as they are)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from facetopt.domain.experiments import ExperimentRecord

if TYPE_CHECKING:
    from facetopt.domain.sql import SqlResult
    from facetopt.services.inspect import ExperimentsReport, FailuresReport, MetricsReport


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


METRICS_LEGEND = (
    "match: binary decision match; recall: positive recall; spec: negative specificity; prec: precision; "
    "Fact: Factuality mean; label: sentiment label accuracy; err: rows errored"
)


def render_metrics(console: Console, report: MetricsReport) -> None:
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


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def trimmed(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def render_failures(console: Console, report: FailuresReport) -> None:
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


def render_experiments(console: Console, report: ExperimentsReport) -> None:
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


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def render_sql(console: Console, result: SqlResult) -> None:
    table = Table()
    for column in result.columns:
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=80)
    for row in result.rows:
        table.add_row(*(Text(cell(row.get(column))) for column in result.columns))
    console.print(table)
    console.print(f"{len(result.rows)} rows ({result.backend})", highlight=False)
