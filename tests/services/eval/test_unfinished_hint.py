"""The error of an eval stopped before it scored a row points at the run that holds rows: the
earlier unfinished run it meant to supersede, never at itself (0 rows, nothing to resume)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from facetopt.clients.braintrust.activity import BraintrustActivity
from facetopt.clients.braintrust.bt_runner import RunnerOutcome
from facetopt.domain.experiments import ExperimentRecord
from facetopt.services.eval.unfinished import unfinished_error


def _plan(rows: int) -> SimpleNamespace:
    settings = SimpleNamespace(trials=1, flush_deadline=300.0)
    return SimpleNamespace(rows=[{}] * rows, settings=settings, send_logs=True, secrets=lambda: [])


def _record(name: str, run_dir: Path, rows: int) -> ExperimentRecord:
    return ExperimentRecord(
        experiment_id=f"id-{run_dir.name}",
        experiment_name=name,
        backend="braintrust",
        project="p",
        model="brain-facet-1",
        dataset="d",
        created="2026-12-05T00:00:00Z",
        run_dir=str(run_dir),
        row_count=rows,
        status="partial",
    )


def _interrupted(tmp_path: Path, scored: int, earlier: ExperimentRecord | None):
    run_dir = tmp_path / "evals" / "20261205T010000Z"
    outcome = RunnerOutcome(1, [], [], [], 1.0, stopped_by="SIGINT")
    activity = BraintrustActivity(experiment_id="new", experiment_name="facet-optimizer-1", logged_rows=0)
    record = _record("facet-optimizer-1", run_dir, scored)
    return unfinished_error(_plan(6), "bt", outcome, run_dir, activity, record, scored, earlier)


def test_a_run_that_scored_nothing_names_the_earlier_run_holding_rows(tmp_path: Path):
    earlier = _record("facet-optimizer", tmp_path / "evals" / "20261205T000000Z", 4)
    error = _interrupted(tmp_path, 0, earlier)
    assert "--resume 20261205T000000Z" in error.hint and "4 row(s)" in error.hint
    assert "--resume 20261205T010000Z" not in error.hint


def test_a_run_that_scored_nothing_without_an_earlier_run_says_rerun(tmp_path: Path):
    error = _interrupted(tmp_path, 0, None)
    assert "--resume" not in error.hint and "re-run the same command" in error.hint


def test_a_run_that_scored_rows_still_offers_its_own_resume(tmp_path: Path):
    error = _interrupted(tmp_path, 3, None)
    assert "--resume 20261205T010000Z" in error.hint and "the 3 scored row(s)" in error.hint
