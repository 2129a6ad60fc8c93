"""Write the decision page: the forest plot drawn, the page rendered, one file written atomically."""

from __future__ import annotations

from pathlib import Path

from facetopt import __version__
from facetopt.clients import artifacts
from facetopt.clients.report_page import ForestRow, forest_plot_svg, render_page
from facetopt.errors import InputError
from facetopt.services.report.model import DecisionReport

METRIC_LABELS = {
    "binary_decision_match": "match",
    "positive_recall": "recall",
    "negative_specificity": "specificity",
    "precision": "precision",
    "sentiment_label_correct": "label accuracy",
    "Factuality": "Factuality",
}


def forest_rows(report: DecisionReport) -> list[ForestRow]:
    return [
        ForestRow(
            label=f"{p.facet_name}: {METRIC_LABELS.get(p.metric, p.metric)} (n={p.n})",
            delta=p.delta,
            ci_low=p.ci_low,
            ci_high=p.ci_high,
            verdict=p.verdict,
            role=p.role,
        )
        for p in report.forest
    ]


def page_html(report: DecisionReport) -> str:
    svg = forest_plot_svg(forest_rows(report), report.guard_margin) if report.forest else ""
    return render_page(
        {
            "report": report.page_data(),
            "forest_svg": svg,
            "metric_labels": METRIC_LABELS,
            "version": __version__,
        }
    )


def check_page_path(out: Path, flag: str = "--out") -> None:
    """A page path that is neither a folder nor an .html file: said before anything is read."""
    if not out.is_dir() and out.suffix.lower() not in (".html", ".htm"):
        raise InputError(
            f"{flag} {out} is not an .html file", hint=f"name the page, for example {flag} decision.html"
        )


def write_report_page(report: DecisionReport, out: Path) -> DecisionReport:
    """The page at `out` (a folder gets `report-<comparison id>.html`); the report with its path."""
    check_page_path(out)
    if out.is_dir():
        out = out / f"report-{report.comparison_id}.html"
    html = page_html(report)
    try:
        artifacts.write_text(out, html)
    except OSError as error:
        raise InputError(
            f"cannot write the report to {out}: {error.strerror or error}",
            hint="choose a writable path with --out",
        ) from error
    return report.model_copy(update={"html": str(out)})
