"""`facetopt report [COMPARISON]`: the decision page of a recorded comparison, one HTML file."""

# No `from __future__ import annotations` here: handles_errors copies the signature as is,
# and Typer needs real (evaluated) Annotated types to see the option names and help.

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from facetopt.cli.inspect import experiments_for
from facetopt.cli.shared.options import Backend, EnvFile, JsonFlag, OutputRoot, RunsDataset, RunsTargetProject
from facetopt.cli.shared.output import emit, handles_errors, note

if TYPE_CHECKING:  # the service loads when the command runs, so `facetopt --help` stays quick
    from facetopt.services.report import DecisionReport

HtmlOut = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="The page to write (a folder gets report-<comparison id>.html); default "
        "<output root>/reports/report-<comparison id>.html.",
    ),
]


def render_report_summary(console: Console, report: "DecisionReport") -> None:
    compare = report.compare
    console.print(Text(f"comparison {report.comparison_id}: overall {compare.overall.verdict}"))
    for facet in compare.facets:
        console.print(Text(f"  {facet.facet_name}: {facet.verdict} ({facet.rule})"))
    for line in report.notes:
        console.print(Text(line))
    if report.html:
        console.print(Text("decision page written (open it in a browser; it fetches nothing):"))
        console.print(Text(report.html), soft_wrap=True)


@handles_errors
def report_command(
    comparison: Annotated[
        str | None,
        typer.Argument(help="A recorded comparison: its id, an id prefix, or latest (the default)."),
    ] = None,
    out: HtmlOut = None,
    dataset: RunsDataset = None,
    target_project: RunsTargetProject = None,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a recorded comparison as one self-contained HTML page: verdicts, a forest plot of every
    delta with its interval, confusion counts, flipped rows, train failures, the prompt diff."""
    from facetopt.services.report import check_page_path, decision_report, write_report_page

    if out is not None:
        check_page_path(out)  # before anything is read
    with experiments_for(env_file, backend, output_root, dataset, target_project) as experiments:
        report = decision_report(experiments, comparison)
        default = experiments.settings.output_root / "reports" / f"report-{report.comparison_id}.html"
    report = write_report_page(report, out if out is not None else default)
    emit(report, as_json, lambda console: render_report_summary(console, report))


def write_compare_page(page: "DecisionReport", recorded_id: str | None, out: Path) -> "DecisionReport":
    """`compare --html`: the page of the comparison just made, under the id it was recorded with."""
    from facetopt.services.report import write_report_page

    page = page.model_copy(update={"comparison_id": recorded_id or "(not recorded)"})
    page = write_report_page(page, out)
    note(f"decision page: {page.html}")
    return page
