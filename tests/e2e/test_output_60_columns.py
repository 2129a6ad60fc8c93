"""At 60 columns (piped, COLUMNS=60) every line facetopt writes fits, or is one unbreakable word
(a URL, an id, a path) or a `$ ` command to copy; no table cell is cut to an ellipsis (columns are
dropped whole, and named); warnings never reach stdout. Against the demo's state."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from facetopt.cli.dataset import render_create
from facetopt.cli.dataset_audit import render_audit
from facetopt.cli.eval import render_eval
from facetopt.cli.shared.output import WrappingConsole
from facetopt.domain.audit import AuditReport
from facetopt.domain.dataset import DatasetCreateSummary
from facetopt.services.demo.loop import DEMO_DATASET, DEMO_PROJECT
from facetopt.services.eval.record import EvalSummary
from tests.e2e.helpers import DemoRun, facetopt_env, run_facetopt

WIDTH = 60
WHERE = ["--target-project", DEMO_PROJECT, "--dataset", DEMO_DATASET, "--backend", "local"]


def too_wide(text: str, width: int = WIDTH) -> list[str]:
    """Lines past `width` that are neither a `$ ` command nor a single word, and cut cells."""
    return [
        line
        for line in text.splitlines()
        if "…" in line or (len(line) > width and not line.startswith("$ ") and len(line.split()) > 1)
    ]


def at_60(demo_run: DemoRun, *args: str, where: list[str] = WHERE):
    argv = [*args, *where, "--output-root", str(demo_run.output_root)]
    result = run_facetopt(argv, demo_run.cwd, facetopt_env(COLUMNS=str(WIDTH)))
    assert result.returncode == 0, result.explain()
    return result


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "failures", "--facet", "issues", "--split", "validation", "--limit", "3"),
        ("inspect", "metrics", "latest"),
        ("inspect", "dataset"),
        ("compare", "previous", "latest"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_workflow_commands_fit_60_columns(demo_run: DemoRun, args):
    result = at_60(demo_run, *args)
    assert too_wide(result.stdout) == [] and too_wide(result.stderr) == []
    assert "warning:" not in result.stdout


def test_inspect_experiments_fits_60_columns(demo_run: DemoRun):
    result = at_60(demo_run, "inspect", "experiments", where=["--backend", "local"])
    assert too_wide(result.stdout) == [] and too_wide(result.stderr) == []


def test_compare_at_60_drops_whole_columns_and_names_them(demo_run: DemoRun):
    text = at_60(demo_run, "compare", "previous", "latest").stdout
    verdicts = json.loads(at_60(demo_run, "compare", "previous", "latest", "--json").stdout)
    names = [f["facet_name"] for f in verdicts["facets"]]
    for facet in verdicts["facets"]:  # each facet's row keeps its whole name and verdict
        row = next(line for line in text.splitlines() if line.startswith(f"{facet['facet_name']} "))
        assert facet["verdict"] in row.split()
    assert "sentiment" in names
    assert "left out at 60 columns:" in text


def _rendered(render, document) -> str:
    buffer = io.StringIO()
    render(WrappingConsole(file=buffer, width=WIDTH, force_terminal=False), document)
    return buffer.getvalue()


def test_dataset_eval_and_audit_reports_fit_60_columns(demo_run: DemoRun):
    run_dir = Path(demo_run.summary["run_dir"])
    assert too_wide(_rendered(render_create, DatasetCreateSummary.model_validate_json(
        (run_dir / "summary.json").read_text()))) == []  # fmt: skip
    for path in sorted((demo_run.output_root / "evals").glob("*/summary.json")):
        assert too_wide(_rendered(render_eval, EvalSummary.model_validate_json(path.read_text()))) == []
    audits = sorted((demo_run.output_root / "audits").glob("*/audit.json"))
    assert audits
    text = _rendered(render_audit, AuditReport.model_validate_json(audits[-1].read_text()))
    assert too_wide(text) == []
    assert "warning:" not in text  # the audit's warnings go to stderr, not into the report


def test_review_export_uses_the_recorded_audit_without_asking_a_model(demo_run: DemoRun, tmp_path: Path):
    """The demo audited validation; exporting it again must not need the auditor (here unreachable)."""
    audits = sorted((demo_run.output_root / "audits").glob("*/audited_rows.jsonl"))
    audited = [json.loads(line) for line in audits[-1].read_text().splitlines() if line.strip()]
    doubted = {row["id"] for row in audited if row.get("decision_agrees") is False}
    assert doubted
    review = tmp_path / "review.yaml"
    result = at_60(
        demo_run,
        "dataset",
        "review",
        "export",
        str(review),
        "--split",
        "validation",
        "--audit-api-base",
        "http://127.0.0.1:9/v1",  # nothing listens: asking it would fail
    )
    assert "using the audit recorded in" in result.stderr
    assert "warning:" not in result.stdout
    assert too_wide(result.stdout) == [] and too_wide(result.stderr) == []
    written = review.read_text()
    assert all(row_id in written for row_id in doubted)
