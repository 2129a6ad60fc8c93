"""Bad input and faults around durable evidence: each one a clear error or warning, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from facetopt.clients.local.store import LocalStore
from tests.cli.dataset_helpers import decide_two, ok, rows_of, run_cli

pytestmark = pytest.mark.slow
TARGET, DATASET, OTHER = "facet-datasets", "facet-groundtruth", "second-set"
LIMITS = ["--positive-limit", "10", "--negative-limit", "10"]


@pytest.fixture
def flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    return ["--backend", "local", "--output-root", str(tmp_path / "state"), "--target-project", TARGET]


def store_of(flags: list[str]) -> Path:
    return Path(flags[3]) / "store.duckdb"


def test_a_review_file_applied_to_another_dataset_is_refused_and_writes_nothing(flags, tmp_path: Path):
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    ok("dataset", "create", *flags, "--dataset", OTHER, *LIMITS)
    review = tmp_path / "review.yaml"
    ok("dataset", "review", "export", str(review), *flags, "--dataset", DATASET, "--only", "all")
    text = review.read_text().replace("decision:\n", "decision: keep\n", 1)
    review.write_text(text)
    before = rows_of(flags, OTHER)
    result = run_cli("dataset", "review", "apply", str(review), *flags, "--dataset", OTHER)
    assert result.exit_code == 1
    assert f"exported from dataset '{DATASET}', but the settings name '{OTHER}'" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert rows_of(flags, OTHER) == before


def test_a_reviewed_row_deleted_by_hand_comes_back_with_the_persons_label(flags, tmp_path: Path):
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    decided = decide_two(flags, DATASET, tmp_path / "review.yaml")
    gone = sorted(decided)[0]
    split = rows_of(flags, DATASET)[gone].split
    with duckdb.connect(str(store_of(flags))) as conn:
        conn.execute("DELETE FROM dataset_rows WHERE id = ?", [gone])
    again = ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    assert any("no longer in dataset" in w and gone in w for w in again["warnings"]), again["warnings"]
    row = rows_of(flags, DATASET)[gone]
    assert row.expected == decided[gone] and row.metadata["review"]["expected"] == decided[gone]
    assert row.split == split


def test_an_upload_of_a_run_made_for_another_project_refuses_naming_both(flags, monkeypatch):
    made = ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    plain = flags[:4]  # no --target-project: the settings name another one
    monkeypatch.setenv("FACET_OPTIMIZER_TARGET_PROJECT", "elsewhere")
    refused = run_cli("dataset", "upload", "--run-dir", made["run_dir"], *plain, "--allow-simulated")
    assert refused.exit_code == 1
    assert f"'{TARGET}'" in refused.stderr and "'elsewhere'" in refused.stderr
    assert "--target-project" in refused.stderr
    with LocalStore(store_of(flags), read_only=True) as store:
        assert store.read_rows("elsewhere", DATASET) == []
    chosen = ok("dataset", "upload", "--run-dir", made["run_dir"], *plain, "--target-project", "elsewhere",
                "--allow-simulated")  # fmt: skip
    assert chosen["target_project"] == "elsewhere" and chosen["verified"] == made["counts"]["dataset_rows"]


def test_datasets_whose_test_rows_already_overlap_are_reported_and_left_alone(flags):
    made = ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS, "--test-fraction", "0.3")
    rows = rows_of(flags, DATASET)
    flipped = []  # the other dataset as an older facetopt could have written it: test and train swapped
    for row in rows.values():
        swapped = {"test": "train", "train": "test"}.get(row.split or "train", row.split)
        flipped.append(row.model_copy(update={"metadata": {**row.metadata, "split": swapped}}))
    with LocalStore(store_of(flags)) as store:
        store.upsert_rows(TARGET, OTHER, flipped)
        store.remember_rows("local", TARGET, OTHER, flipped)
    mine = {(r.metadata["source_root_span_id"], r.split == "test") for r in rows.values()}
    theirs = {(r.metadata["source_root_span_id"], r.split == "test") for r in flipped}
    crossing = {t for t, test in mine if (t, not test) in theirs}
    assert crossing
    upload = ok("dataset", "upload", "--run-dir", made["run_dir"], *flags, "--allow-simulated")
    [warning] = [w for w in upload["warnings"] if "already in test on one side" in w]
    assert warning.startswith(f"{len(crossing)} trace(s)") and f"'{OTHER}'" in warning
    assert {i: r.split for i, r in rows_of(flags, DATASET).items()} == {i: r.split for i, r in rows.items()}
    assert {i: r.split for i, r in rows_of(flags, OTHER).items()} == {r.id: r.split for r in flipped}


def test_a_store_from_the_previous_version_is_migrated_in_place(flags):
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS, "--test-fraction", "0.3")
    first = rows_of(flags, DATASET)
    with duckdb.connect(str(store_of(flags))) as conn:  # the previous version had no ledger
        conn.execute("DROP TABLE row_ledger")
        conn.execute("UPDATE store_meta SET schema_sha = 'previous'")
    with LocalStore(store_of(flags), read_only=True) as store:  # read before any write: rows stand in
        assert {e.id for e in store.ledger("local", TARGET)} == set(first)
    second = ok("dataset", "create", *flags, "--dataset", OTHER, *LIMITS, "--test-fraction", "0.3")
    with LocalStore(store_of(flags), read_only=True) as store:
        ledger = store.ledger("local", TARGET)
    assert {e.id for e in ledger if e.dataset == DATASET} == set(first)
    tested = {r.metadata["source_root_span_id"] for r in first.values() if r.split == "test"}
    other = rows_of(flags, OTHER)
    assert all(r.split == "test" for r in other.values() if r.metadata["source_root_span_id"] in tested)
    assert rows_of(flags, DATASET) == first
    assert json.loads(json.dumps(second["counts"]))["placed_by_traces"] > 0


def test_applying_an_older_review_file_does_not_undo_a_later_decision(flags, tmp_path: Path):
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    older = tmp_path / "older.yaml"  # exported before any decision: it holds the model's labels
    ok("dataset", "review", "export", str(older), *flags, "--dataset", DATASET, "--only", "all")
    decided = decide_two(flags, DATASET, tmp_path / "review.yaml")
    text = older.read_text().replace("decision:\n", "decision: keep\n")  # keep every model label
    older.write_text(text)
    result = ok("dataset", "review", "apply", str(older), *flags)
    assert {c["id"] for c in result["conflicts"]} >= set(decided)
    rows = rows_of(flags, DATASET)
    assert {i: rows[i].expected for i in decided} == decided
