"""The test split as a holdout: never read by default, two prompt versions per facet, every look
recorded, compare on test as the final check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from facetopt.clients.local.store import LocalStore
from facetopt.errors import InputError
from facetopt.facets.data.selection import parse_splits, select_rows
from facetopt.services.experiments.holdout import check_test_touch, dataset_status, record_test_touch
from facetopt.settings import Settings
from tests.services.eval.helpers import DATASET, PROJECT, make_rows, seed_local_state
from tests.services.experiment_fixtures import SHA_V1, SHA_V2, eval_row, record, write_store

SHA_V3 = "d4" * 32


def with_test_rows(count: int = 12):
    """make_rows with every fourth row moved to the test split."""
    rows = make_rows(count)
    for i in range(0, count, 4):
        rows[i] = rows[i].model_copy(update={"metadata": {**rows[i].metadata, "split": "test"}})
    return rows


def test_no_split_and_all_mean_train_and_validation_only():
    rows = with_test_rows()
    for value in (None, "all", "ALL"):
        chosen = select_rows(rows, splits=parse_splits(value), facets=[], row_ids=[], max_rows=None)
        assert chosen and {r.split for r in chosen} == {"train", "validation"}
    only_test = select_rows(rows, splits=parse_splits("test"), facets=[], row_ids=[], max_rows=None)
    assert len(only_test) == 3 and {r.split for r in only_test} == {"test"}


def test_a_dataset_of_test_rows_only_is_not_evaluated_silently_by_default():
    rows = [r for r in with_test_rows() if r.split == "test"]
    with pytest.raises(InputError, match="test split"):
        select_rows(rows, splits=[], facets=[], row_ids=[], max_rows=None)


def test_two_prompt_versions_may_read_test_and_a_third_needs_force(tmp_path: Path):
    settings = Settings(output_root=tmp_path)
    record_test_touch(settings, "proj", "ds", {"Issues": SHA_V1}, "exp-1", "eval", False)
    assert check_test_touch(settings, "proj", "ds", {"Issues": SHA_V2}, False, "eval") == []
    record_test_touch(settings, "proj", "ds", {"Issues": SHA_V2}, "exp-2", "eval", False)
    # the same versions again are not new versions; another facet or dataset has its own budget
    assert check_test_touch(settings, "proj", "ds", {"issues": SHA_V1}, False, "eval") == []
    assert check_test_touch(settings, "proj", "other", {"Issues": SHA_V3}, False, "eval") == []
    with pytest.raises(InputError, match="2 prompt versions") as refused:
        check_test_touch(settings, "proj", "ds", {"Issues": SHA_V3}, False, "eval --split test")
    assert "--force" in (refused.value.hint or "")
    warnings = check_test_touch(settings, "proj", "ds", {"Issues": SHA_V3}, True, "eval")
    assert "test split touched by 3 prompt versions" in warnings[0]
    record_test_touch(settings, "proj", "ds", {"Issues": SHA_V3}, "exp-3", "eval", True)
    [status] = dataset_status(settings, "proj", "ds")
    assert (status.prompt_versions, status.touches, status.forced, status.overused) == (3, 3, 1, True)
    with LocalStore(settings.store_path, read_only=True) as store:
        touches = store.test_touches("proj", "ds")
    assert [(t.prompt_sha, t.experiment_id, t.forced) for t in touches] == [
        (SHA_V1, "exp-1", False),
        (SHA_V2, "exp-2", False),
        (SHA_V3, "exp-3", True),
    ]


def cli(root: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--output-root", str(root)])


def test_eval_on_test_by_a_third_prompt_version_is_refused_before_anything_runs(tmp_path: Path):
    root = seed_local_state(tmp_path / "state", with_test_rows())
    settings = Settings(output_root=root)
    for n, sha in enumerate((SHA_V1, SHA_V2)):
        record_test_touch(settings, PROJECT, DATASET, {"Issues": sha}, f"exp-{n}", "eval", False)
    result = cli(root, "eval", "--target-project", PROJECT, "--dataset", DATASET, "--split", "test", "--json")
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert "test split" in error["message"] and "Issues" in error["message"]
    assert "--force" in error["hint"]
    assert not (root / "evals").exists()  # no run folder: nothing was paid for


def failures_store(root: Path, shas: list[str]) -> None:
    entries = []
    for n, sha in enumerate(shas):
        rows = [eval_row(f"t{i}", "Leaked reasoning", "none", split="test") for i in range(3)]
        rows.append(eval_row("v1", "Leaked reasoning", "none"))
        entries.append(
            (
                record(
                    f"exp-{n}", f"2026-01-0{n + 1}T00:00:00Z", split="test", prompt_hashes={"issues": sha}
                ),
                rows,
            )
        )
    write_store(root, entries)


def test_inspect_failures_on_test_rows_is_a_recorded_look(tmp_path: Path):
    failures_store(tmp_path, [SHA_V1, SHA_V2, SHA_V3])
    common = ["inspect", "failures", "--facet", "issues", "--dataset", "demo", "--backend", "local", "--json"]
    on_validation = cli(tmp_path, *common, "exp-2")
    assert on_validation.exit_code == 0, on_validation.output
    assert dataset_status(Settings(output_root=tmp_path), "proj", "demo") == []  # validation rows only
    for experiment in ("exp-0", "exp-1"):
        assert cli(tmp_path, *common, experiment, "--split", "test").exit_code == 0
    third = cli(tmp_path, *common, "exp-2", "--split", "test")
    assert third.exit_code == 1 and "--force" in json.loads(third.stdout)["error"]["hint"]
    forced = cli(tmp_path, *common, "exp-2", "--split", "test", "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["test_rows"] == 3
    listed = cli(tmp_path, "inspect", "experiments")
    assert "test split of 'demo' touched by 3 prompt versions of facet issues" in listed.stdout
    as_json = json.loads(cli(tmp_path, "inspect", "experiments", "--json").stdout)
    assert as_json["test_splits"][0]["prompt_versions"] == 3


def test_compare_on_test_is_the_final_check_without_advice_to_iterate(tmp_path: Path):
    failures_store(tmp_path, [SHA_V1, SHA_V2])
    settings = Settings(output_root=tmp_path)
    for n, sha in enumerate((SHA_V1, SHA_V2, SHA_V3)):
        record_test_touch(settings, "proj", "demo", {"issues": sha}, f"exp-{n}", "eval", n == 2)
    args = ["compare", "exp-0", "exp-1", "--split", "test", "--dataset", "demo", "--backend", "local"]
    shown = cli(tmp_path, *args)
    assert shown.exit_code == 0, shown.output
    assert "this is the final check" in shown.stdout
    assert "more paired rows needed" not in shown.stdout  # 3 rows: INCONCLUSIVE, and no call for more
    assert "test split of 'demo' touched by 3 prompt versions" in shown.stderr
    report = json.loads(cli(tmp_path, *args, "--json").stdout)
    assert report["final_check"] is True
    assert all(f["rows_needed"] is None for f in [*report["facets"], report["overall"]])
