"""`facetopt report` and `compare --html` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from facetopt.cli.compare import compare_command
from facetopt.cli.report import report_command
from tests.cli.test_compare_cli import store  # noqa: F401  (the fixture: two runs, the edit fixes 12 negatives)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A stand-in root so the commands are subcommands, as in facetopt."""

    app.command("compare")(compare_command)
    app.command("report")(report_command)
    return app


def invoke(app: typer.Typer, root: Path, *args: str):
    env = {"FACET_OPTIMIZER_OUTPUT_ROOT": str(root), "FACET_OPTIMIZER_DATASET": "demo", "COLUMNS": "80"}
    return CliRunner().invoke(app, list(args), env=env)


def test_report_before_any_compare_says_what_to_run(app: typer.Typer, output_root: Path):
    shown = invoke(app, output_root, "report")
    assert shown.exit_code == 1
    assert "error: no comparison is recorded" in shown.stderr
    assert "facetopt compare previous latest" in shown.stderr
    assert "Traceback" not in shown.output


def test_compare_html_and_report_write_the_same_decision(app: typer.Typer, store: Path):  # noqa: F811
    page = store / "out" / "decision.html"
    compared = invoke(app, store, "compare", "previous", "latest", "--html", str(page), "--json")
    assert compared.exit_code == 0, compared.output
    comparison = json.loads(compared.stdout)
    assert page.is_file() and f"decision page: {page}" in " ".join(compared.stderr.split())
    html = page.read_text(encoding="utf-8")
    assert comparison["comparison_id"] in html and "KEEP" in html

    reported = invoke(app, store, "report", "--json")
    assert reported.exit_code == 0, reported.output
    document = json.loads(reported.stdout)
    assert document["comparison_id"] == comparison["comparison_id"] and document["source"] == "recorded"
    assert document["compare"]["overall"] == comparison["overall"]
    default = store / "reports" / f"report-{comparison['comparison_id']}.html"
    assert document["html"] == str(default) and default.is_file()
    (facet,) = document["facets"]
    assert (facet["fixed"], facet["broken"]) == (12, 0)  # 8 of 20 negatives right -> all 20

    human = invoke(app, store, "report", comparison["comparison_id"][:6], "--out", str(store / "p.html"))
    assert human.exit_code == 0, human.output
    assert str(store / "p.html") in human.stdout.splitlines()  # the path on a line of its own


def test_a_page_path_that_is_not_html_is_refused_before_anything_is_read(app: typer.Typer, output_root: Path):
    # an empty output root: were the store read first, the error would be "no comparison is recorded"
    for args in (["report", "--out", "page.txt"], ["compare", "previous", "latest", "--html", "page.txt"]):
        shown = invoke(app, output_root, *args)
        assert shown.exit_code == 1, shown.output
        assert "is not an .html file" in shown.stderr and "no comparison" not in shown.stderr
        assert "registry is empty" not in shown.stderr
