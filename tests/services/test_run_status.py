"""The run record tells the truth (hand-built registries, no eval run): `latest` / `previous` and
the validation budget pass over runs that are not complete and say which; compare refuses a run
in which every row errored and leaves errored pairs out, named and counted; Braintrust listings
read a run's status from its metadata; inspect failures warns once about validation traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetopt.domain.experiments import ExperimentRecord
from facetopt.errors import InputError, NotFoundError
from facetopt.services.backends.braintrust_experiments import NEVER_ENDED, record_from_experiment
from facetopt.services.experiments.compare import compare_experiments
from facetopt.services.experiments.inspect import VALIDATION_TRACES_WARNING, inspect_failures, inspect_metrics
from facetopt.services.experiments.registry import Scope, open_experiments, resolve_reference
from facetopt.settings import load_settings
from tests.services.experiment_fixtures import SHA_V1, SHA_V2, eval_row, record, write_store

FLAGS = {"backend": "local", "dataset": "demo"}


def _rows(
    n: int, prefix: str = "r", error_ids: frozenset[int] = frozenset(), wrong: frozenset[int] = frozenset()
):
    """n validation rows of `issues`, half expected-positive; `error_ids` rows errored (output ""),
    `wrong` rows answered wrongly."""
    made = []
    for i in range(n):
        expected = "Leaked reasoning" if i % 2 == 0 else "none"
        right = expected if i not in wrong else ("none" if i % 2 == 0 else "Answered the user")
        failed = i in error_ids
        row = eval_row(
            f"{prefix}{i:03}", expected, "" if failed else right, error="HTTP 500" if failed else None
        )
        if failed:
            row.scores = dict.fromkeys(row.scores)
        made.append(row)
    return made


def _status(entry: ExperimentRecord, status: str, cause: str | None) -> ExperimentRecord:
    return entry.model_copy(update={"status": status, "status_cause": cause})


def _open(root: Path):
    return open_experiments(load_settings(None, output_root=root, **FLAGS))


def test_latest_and_previous_pass_over_runs_that_are_not_complete_and_say_which(output_root: Path):
    good_old = record("good-old", "2024-01-01T00:00:00Z", name="good-old")
    good = record("good", "2024-01-02T00:00:00Z", name="good")
    disk = _status(
        record("disk", "2024-01-03T00:00:00Z", name="disk"),
        "failed",
        "the command failed after the eval: no space left on device",
    )
    errored = _status(
        record("errored", "2024-01-04T00:00:00Z", name="errored"), "failed", "every row failed (10 rows)"
    )
    stopped = _status(
        record("stopped", "2024-01-05T00:00:00Z", name="stopped"), "interrupted", "interrupted (SIGINT)"
    )
    write_store(output_root, [(r, _rows(10)) for r in (good_old, good, disk, errored, stopped)])
    with _open(output_root) as experiments:
        latest = experiments.resolve("latest")
        previous = experiments.resolve("previous")
        notes = list(experiments.notes)
        by_id = experiments.resolve("disk")  # named explicitly, any status goes
    assert (latest.experiment_id, previous.experiment_id, by_id.experiment_id) == ("good", "good-old", "disk")
    assert len(notes) == 2  # one per reference
    for note in notes:
        assert "passed over 3 run(s) that are not complete" in note
        for name, status in (("disk", "failed"), ("errored", "failed"), ("stopped", "interrupted")):
            assert f"'{name}' ({name}) is {status}" in note
        assert "no space left on device" in note


def test_latest_with_only_unfinished_runs_is_an_error_naming_them(output_root: Path):
    failed = _status(
        record("only", "2024-01-03T00:00:00Z", name="only"), "failed", "every row failed (4 rows)"
    )
    records = [failed]
    with pytest.raises(NotFoundError) as caught:
        resolve_reference(records, "latest", Scope(backend="local", dataset="demo"))
    message = caught.value.message
    assert "needs 1 complete run" in message and "has 0" in message
    assert "'only' (only) is failed: every row failed (4 rows)" in message


def test_metrics_report_carries_the_skip_note(output_root: Path):
    good = record("good", "2024-01-02T00:00:00Z", name="good")
    partial = _status(
        record("half", "2024-01-03T00:00:00Z", name="half"),
        "partial",
        "5 of 10 rows have no result from the eval runner",
    )
    write_store(output_root, [(good, _rows(10)), (partial, _rows(5))])
    with _open(output_root) as experiments:
        report = inspect_metrics(experiments, "latest")
    assert report.experiment.experiment_id == "good" and report.rows == 10
    assert any("'half' (half) is partial: 5 of 10 rows have no result" in n for n in report.notes)


def test_the_validation_budget_counts_complete_runs_only(output_root: Path):
    complete = [record(f"ok{i}", f"2024-01-0{i + 1}T00:00:00Z", name=f"ok{i}") for i in range(3)]
    broken = [
        _status(record(f"bad{i}", f"2024-01-0{i + 5}T00:00:00Z", name=f"bad{i}"), status, "x")
        for i, status in enumerate(("failed", "partial", "interrupted"))
    ]
    write_store(output_root, [(r, None) for r in complete + broken])
    with _open(output_root) as experiments:
        runs = experiments.validation_runs("demo")
    from facetopt.clients.local.store import LocalStore

    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        stored = store.validation_runs("demo")
    assert len(runs) == len(stored) == 3  # 6 runs on validation, 3 of them complete


def _compare(root: Path, baseline, candidate, **options):
    base = record("base", "2024-01-01T00:00:00Z", name="base", prompt_hashes={"issues": SHA_V1})
    cand = record("cand", "2024-01-02T00:00:00Z", name="cand", prompt_hashes={"issues": SHA_V2})
    write_store(root, [(base, baseline), (cand, candidate)])
    with _open(root) as experiments:
        return compare_experiments(experiments, "base", "cand", iterations=200, **options)


def test_compare_refuses_a_run_in_which_every_row_errored(output_root: Path):
    with pytest.raises(InputError) as caught:
        _compare(output_root, _rows(10), _rows(10, error_ids=frozenset(range(10))))
    message = caught.value.message
    assert "every row of the candidate 'cand' (cand) errored (10 rows on split validation)" in message
    assert "r000: HTTP 500" in message
    assert "INCONCLUSIVE" not in message


def test_compare_of_two_all_errored_runs_names_the_baseline_first(output_root: Path):
    every = frozenset(range(10))
    with pytest.raises(InputError) as caught:
        _compare(output_root, _rows(10, error_ids=every), _rows(10, error_ids=every))
    assert "every row of the baseline 'base' (base) errored" in caught.value.message


def test_compare_leaves_errored_pairs_out_names_them_and_counts_them(output_root: Path):
    # 30 rows; the baseline errored on rows 1 and 2, the candidate on rows 2 and 5: pairs 1, 2, 5 go
    baseline = _rows(30, error_ids=frozenset({1, 2}))
    candidate = _rows(30, error_ids=frozenset({2, 5}), wrong=frozenset({0}))
    report = _compare(output_root, baseline, candidate)
    assert report.errored.baseline == ["r001", "r002"]
    assert report.errored.candidate == ["r002", "r005"]
    assert report.errored.pairs_left_out == 3
    assert report.paired_rows == 27
    warning = next(w for w in report.warnings if w.startswith("rows whose model call failed"))
    assert "baseline 2 (r001, r002)" in warning and "candidate 2 (r002, r005)" in warning
    assert "3 pair(s)" in warning
    # the target's delta over the 27 clean pairs: one row (r000) got worse, nothing better
    delta = next(d for d in report.overall.deltas if d.metric == "binary_decision_match")
    assert (delta.n, delta.worse, delta.better) == (27, 1, 0)


def test_compare_when_every_common_row_errored_on_one_side_or_the_other(output_root: Path):
    with pytest.raises(InputError) as caught:
        _compare(output_root, _rows(4, error_ids=frozenset({0, 1})), _rows(4, error_ids=frozenset({2, 3})))
    assert "every row the runs have in common errored on one side or the other" in caught.value.message


def test_a_braintrust_listing_reads_the_run_status_from_the_metadata():
    def listed(metadata):
        return record_from_experiment({"id": "e1", "name": "n", "created": "2024", "metadata": metadata}, "p")

    running = listed({"facetopt_version": "1", "facetopt_status": "running"})
    done = listed({"facetopt_version": "1", "facetopt_status": "complete"})
    failed = listed(
        {"facetopt_version": "1", "facetopt_status": "failed", "facetopt_status_cause": "every row failed"}
    )
    other = listed({"dataset": "demo"})  # the original scripts, or a facetopt from before the key
    assert (running.status, running.status_cause) == ("partial", NEVER_ENDED)
    assert done.status == "complete" and other.status == "complete"
    assert (failed.status, failed.status_cause) == ("failed", "every row failed")
    scope = Scope(backend="braintrust", dataset="demo")
    newest_first = [
        running.model_copy(update={"experiment_id": "run", "created": "3", "dataset": "demo"}),
        other.model_copy(update={"experiment_id": "old", "created": "1", "dataset": "demo"}),
    ]
    notes: list[str] = []
    assert resolve_reference(newest_first, "latest", scope, notes=notes).experiment_id == "old"
    assert "never recorded its end" in notes[0]


def test_an_old_registry_entry_marked_not_logged_reads_as_partial():
    old = ExperimentRecord.model_validate(
        {"experiment_id": "x", "experiment_name": "x", "backend": "braintrust", "model": "m",
         "dataset": "d", "created": "2024", "status": "not_logged"}
    )  # fmt: skip
    assert (old.status, old.logged_rows, old.complete) == ("partial", 0, False)


def test_inspect_failures_on_validation_warns_once_and_on_train_not_at_all(output_root: Path):
    rows = _rows(10, wrong=frozenset({0, 1, 2})) + [
        eval_row(f"t{i}", "none", "Answered the user", split="train") for i in range(3)
    ]
    write_store(output_root, [(record("e", "2024-01-01T00:00:00Z", name="e", split=None), rows)])
    with _open(output_root) as experiments:
        validation = inspect_failures(experiments, "e", "issues")
        train = inspect_failures(experiments, "e", "issues", split="train")
    assert validation.listed == 3 and validation.warnings == [VALIDATION_TRACES_WARNING]
    assert train.listed == 3 and train.warnings == []
