"""The demo ends with the decision page: `facetopt report` gives the same page from the recorded
comparison, its data agrees with the raw experiment rows, and a real browser draws it offline."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import duckdb
import pytest

from tests.e2e.helpers import DemoRun, run_facetopt
from tests.services.report.test_report_page import external_references

pytestmark = pytest.mark.e2e


def _report_json(demo_run: DemoRun) -> dict:
    command = next(c for c in demo_run.announced_commands if c.startswith("facetopt report"))
    result = run_facetopt([*shlex.split(command)[1:], "--json"], demo_run.cwd)
    assert result.returncode == 0, result.explain()
    return result.json()


def _decision_scores(store: Path, experiment_id: str, facet: str) -> dict[str, float]:
    """binary_decision_match per row id, read from the store's raw rows (not through facetopt), one
    row per conversation (the first by id: repeated conversations are one observation)."""
    with duckdb.connect(str(store), read_only=True) as conn:
        found = conn.execute(
            "SELECT id, CAST(json_extract(row, '$.scores.binary_decision_match') AS DOUBLE), "
            "json_extract_string(row, '$.input.preprocessed_text') "
            "FROM experiment_rows WHERE experiment_id = ? AND lower(facet_name) = lower(?) AND split = 'validation' "
            "ORDER BY id",
            [experiment_id, facet],
        ).fetchall()
    seen: set[str] = set()
    scores = {}
    for row_id, score, text in found:
        conversation = " ".join((text or row_id).split())
        if conversation in seen:
            continue
        seen.add(conversation)
        if score is not None:
            scores[row_id] = score
    return scores


def test_the_demo_writes_the_decision_page_of_its_comparison(demo_run: DemoRun):
    summary = demo_run.summary
    page_path = Path(summary["report_page"])
    assert page_path.is_file() and page_path.parent == demo_run.output_root / "reports"
    report = _report_json(demo_run)
    assert report["html"] == summary["report_page"]
    assert report["compare"]["baseline"]["experiment_id"] == summary["baseline_experiment"]
    assert report["compare"]["candidate"]["experiment_id"] == summary["candidate_experiment"]
    facet = summary["weakest_facet"]
    folded = report["compare"]["folded_rows"]  # the bundled sample repeats conversations
    assert folded > 0 and f"{folded} of them repeat a conversation" in page_path.read_text(encoding="utf-8")
    plotted = {p["metric"]: p["delta"] for p in report["forest"] if p["facet_name"] == facet}
    assert plotted == {k: v for k, v in summary["facet_deltas"].items() if v is not None}


def test_the_flipped_rows_agree_with_the_raw_rows_and_mcnemar(demo_run: DemoRun):
    summary, report = demo_run.summary, _report_json(demo_run)
    facet = summary["weakest_facet"]
    store = demo_run.output_root / "store.duckdb"
    before = _decision_scores(store, summary["baseline_experiment"], facet)
    after = _decision_scores(store, summary["candidate_experiment"], facet)
    fixed = sum(1 for i in before.keys() & after.keys() if before[i] < after[i])
    broken = sum(1 for i in before.keys() & after.keys() if before[i] > after[i])
    page = next(f for f in report["facets"] if f["facet_name"] == facet)
    assert (page["fixed"], page["broken"]) == (fixed, broken)
    comparison = next(c for c in report["compare"]["facets"] if c["facet_name"] == facet)
    if report["compare"]["target"] == "balanced":
        assert (comparison["mcnemar_b"], comparison["mcnemar_c"]) == (broken, fixed)
    shown = {d["id"] for d in page["discordant"]}
    assert shown <= before.keys() and len(shown) == min(fixed + broken, 12)


def test_the_page_references_nothing_outside_itself(demo_run: DemoRun):
    html = Path(demo_run.summary["report_page"]).read_text(encoding="utf-8")
    assert external_references(html) == []
    assert "<svg" in html and "<script" not in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_a_headless_browser_draws_the_forest_plot_and_the_verdicts(demo_run: DemoRun):
    page = Path(demo_run.summary["report_page"])
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}",
        ]  # fmt: skip
        dom = subprocess.run(
            [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60
        ).stdout
        shot = Path(profile) / "page.png"
        subprocess.run(
            [*flags, "--window-size=900,1400", f"--screenshot={shot}", page.as_uri()],
            capture_output=True,
            timeout=60,
        )
        assert shot.is_file() and shot.stat().st_size > 10_000
    assert "forest plot of the paired deltas" in dom
    for facet in _report_json(demo_run)["compare"]["facets"]:
        assert f"{facet['facet_name']}: " in dom and facet["verdict"] in dom
