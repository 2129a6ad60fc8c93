"""The registry entry of a real eval (local backend, the SDK runner, simulated models) says how it
ended: an eval that scored every row and then met a full disk is not complete, an eval in which
every row failed is failed, and neither is picked by `latest` nor counted in the validation budget."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path

import pytest

from facetopt.clients import artifacts
from facetopt.clients.local.store import LocalStore
from facetopt.errors import EvalRunError, Interrupted
from facetopt.services.eval import record as record_module
from facetopt.services.eval import run as run_module
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.services.eval.helpers import (
    DATASET,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)

pytestmark = pytest.mark.slow

ROWS = 6


def _eval(root: Path, messages: list[str], split: str = "validation,train"):
    return run_eval(
        load_settings(
            None,
            output_root=root,
            backend="local",
            target_project=PROJECT,
            dataset=DATASET,
            api_base="simulated://",
            judge_api_base="simulated://",
            split=split,
            experiment_prefix="holdout" if split == "test" else "facet-optimizer",
        ),
        options=EvalOptions(),
        progress=SilentProgress(),
        announce=messages.append,
        warn=messages.append,
    )


def _registry(root: Path):
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        return {r.experiment_id: r for r in store.experiments()}, store.validation_runs(DATASET)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("records")
    rows = make_rows(ROWS + 2)
    for row in rows[ROWS:]:  # two test rows
        row.metadata["split"] = "test"
        row.tags = ["facet-optimizer", row.facet_name, "test"]
    root = seed_local_state(tmp / "state", rows)
    messages: list[str] = []
    with isolated_env(tmp, path_without_bt()) as patch:
        good = _eval(root, messages)

        real_write_json = artifacts.write_json

        def full_disk(path, value):
            if Path(path).name == "summary.json":
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real_write_json(path, value)

        patch.setattr(record_module.artifacts, "write_json", full_disk)
        with pytest.raises(OSError) as disk_error:
            _eval(root, messages)
        patch.setattr(record_module.artifacts, "write_json", real_write_json)

        real_launch = run_module.launch

        def stopped_by_ctrl_c(*args, **kwargs):  # every row scored, then Ctrl-C reached the runner
            runner, outcome = real_launch(*args, **kwargs)
            return runner, dataclasses.replace(outcome, stopped_by="SIGINT", returncode=130)

        patch.setattr(run_module, "launch", stopped_by_ctrl_c)
        with pytest.raises(Interrupted) as interrupted:
            _eval(root, messages, split="train")
        patch.setattr(run_module, "launch", real_launch)

        patch.setenv("FACETOPT_SIMULATED_FAIL", "User: ticket")  # in every row's text
        with pytest.raises(EvalRunError) as all_failed:
            _eval(root, messages)
        with pytest.raises(EvalRunError):
            _eval(root, messages, split="test")  # every test row failed too: nothing was seen
    registry, validation_runs = _registry(root)
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        touches = store.test_touches()
    test_runs = {k: r for k, r in registry.items() if r.split == "test"}
    INTERRUPTED.update(error=interrupted.value, runs=[r for r in registry.values() if r.split == "train"])
    registry = {k: r for k, r in registry.items() if r.split not in ("test", "train")}
    return root, good, disk_error.value, all_failed.value, registry, validation_runs, (test_runs, touches)


INTERRUPTED: dict = {}


def test_a_finished_run_is_complete_and_counts(runs):
    _, good, _, _, registry, _, _ = runs
    entry = registry[good.experiment_id]
    assert (entry.status, entry.status_cause, good.status) == ("complete", None, "complete")
    assert (entry.selected_rows, entry.scored_results, entry.row_count) == (ROWS, ROWS, ROWS)


def test_a_run_that_scored_every_row_then_met_a_full_disk_is_failed_not_complete(runs):
    _, good, disk_error, _, registry, _, _ = runs
    assert disk_error.errno == errno.ENOSPC
    (entry,) = [
        r
        for r in registry.values()
        if r.experiment_id != good.experiment_id and r.row_count == ROWS and r.error_count == 0
    ]
    assert entry.status == "failed"
    assert "No space left on device" in (entry.status_cause or "")


def test_a_run_whose_every_row_failed_is_failed_with_the_cause(runs):
    _, _, _, all_failed, registry, _, _ = runs
    assert "every row failed (6 rows)" in all_failed.message
    (entry,) = [r for r in registry.values() if r.error_count == ROWS]
    assert entry.status == "failed" and entry.status_cause.startswith("every row failed (6 rows)")


def test_latest_and_the_budget_pass_over_both(runs):
    root, good, _, _, registry, validation_runs, _ = runs
    assert len(registry) == 3 and len(validation_runs) == 1  # three runs on validation, one complete
    settings = load_settings(None, output_root=root, backend="local", dataset=DATASET, target_project=PROJECT)
    with open_experiments(settings) as experiments:
        latest = experiments.resolve("latest")
        (note,) = experiments.notes
    assert latest.experiment_id == good.experiment_id
    # the all-failed run has the full-disk run's name: it supersedes that unfinished run
    (disk,) = [r for r in registry.values() if r.superseded_by]
    errored = registry[disk.superseded_by]
    assert (disk.error_count, errored.error_count) == (0, ROWS)
    (test_run,) = runs[-1][0].values()
    (stopped,) = INTERRUPTED["runs"]
    # the all-failed, the interrupted (train) and the test run; not the superseded full-disk run
    assert "passed over 3 run(s) that are not complete" in note
    assert f"({test_run.experiment_id}) is failed: every row failed (2 rows)" in note
    assert f"({stopped.experiment_id}) is interrupted: interrupted (SIGINT)" in note
    assert f"({errored.experiment_id}) is failed: every row failed (6 rows)" in note


def test_an_eval_on_test_whose_every_row_failed_is_no_look_at_test(runs):
    *_, (test_runs, touches) = runs
    (entry,) = test_runs.values()
    assert (entry.status, entry.error_count) == ("failed", 2)
    assert touches == []


def test_an_interrupted_local_run_is_recorded_as_interrupted_with_its_rows(runs):
    root = runs[0]
    error, (entry,) = INTERRUPTED["error"], INTERRUPTED["runs"]
    assert error.exit_code == 130 and "interrupted (SIGINT)" in error.message
    assert "re-run the same command" in error.hint and "--resume" not in error.hint
    assert entry.status == "interrupted" and entry.status_cause.startswith("interrupted (SIGINT)")
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        kept = store.experiment_rows(entry.experiment_id)
    train_rows = [r for r in make_rows(ROWS) if r.split == "train"]
    assert sorted(r.id for r in kept) == sorted(r.id for r in train_rows)
