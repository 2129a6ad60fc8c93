"""Evidence that later commands cannot quietly undo, on both backends: a person's label and a row's
split survive review apply -> dataset create -> dataset upload (same and another dataset) -> review
export; a trace never crosses the holdout between datasets of a project; test rows stay out of the
audit unless asked for, and then the look is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from facetopt.clients.local.store import LocalStore
from tests.cli.dataset_helpers import decide_two, ok, rows_of, run_cli
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.braintrust_setup import braintrust_env, sample_spans

TARGET = "facet-datasets"

pytestmark = [pytest.mark.usefixtures("fast_retries"), pytest.mark.slow]
SOURCE, DATASET, OTHER = "checkout-assistant", "facet-groundtruth", "second-set"
LIMITS = ["--positive-limit", "12", "--negative-limit", "12"]


@pytest.fixture(params=["local", "braintrust"])
def backend(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(output root, the flags every command takes on this backend)."""
    root = tmp_path / "state"
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        yield root, ["--backend", "local", "--output-root", str(root), "--target-project", TARGET]
        return
    with FakeBraintrust() as fake:
        fake.add_spans(fake.create_project(SOURCE)["id"], sample_spans(tmp_path / "sample"))
        for name, value in braintrust_env(fake).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("FACET_OPTIMIZER_SOURCE_PROJECT", SOURCE)
        yield root, ["--backend", "braintrust", "--output-root", str(root), "--target-project", TARGET]


def test_reviewed_labels_and_splits_survive_create_upload_and_export(backend, tmp_path: Path):
    root, flags = backend
    first = ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    before = rows_of(flags, DATASET)
    decided = decide_two(flags, DATASET, tmp_path / "review.yaml")

    # a new run with other fractions and larger limits: held rows keep split and reviewed label
    again = ok(
        "dataset", "create", *flags, "--dataset", DATASET, "--positive-limit", "16", "--negative-limit", "16",
        "--validation-fraction", "0.5", "--test-fraction", "0.3",
    )  # fmt: skip
    counts = again["counts"]
    held_again = {
        r["id"] for r in map(json.loads, open(Path(again["run_dir"]) / "dataset_rows.jsonl"))
    } & set(before)
    assert counts["existing_rows"] == len(held_again) > 0
    assert counts["kept_reviewed_labels"] == len(set(decided) & held_again)
    assert counts["rows_from_earlier_runs"] == len(before)

    # the first run's folder (the model's labels, no review) into the same dataset, then into another
    same = ok("dataset", "upload", "--run-dir", first["run_dir"], *flags, "--allow-simulated")
    assert same["existing_rows"] == len(before) and same["kept_reviewed_labels"] == 2
    ok("dataset", "upload", "--run-dir", first["run_dir"], *flags, "--dataset", OTHER, "--allow-simulated")

    after = rows_of(flags, DATASET)
    assert {i: r.split for i, r in after.items() if i in before} == {i: r.split for i, r in before.items()}
    for row_id, label in decided.items():
        assert after[row_id].expected == label and after[row_id].metadata["review"]["expected"] == label
    unreviewed = set(before) - set(decided)
    assert all(after[i].expected == before[i].expected for i in unreviewed)
    other = rows_of(flags, OTHER)
    assert {i: r.split for i, r in other.items()} == {i: r.split for i, r in before.items()}

    # the export shows the person's labels, each row in its first split; test rows stay out
    export = tmp_path / "again.yaml"
    ok("dataset", "review", "export", str(export), *flags, "--dataset", DATASET, "--only", "all")
    entries = {e["id"]: e for e in YAML(typ="safe").load(export.read_text())["rows"]}
    assert {e["split"] for e in entries.values()} <= {"train", "validation"}
    for row_id, label in decided.items():
        if before[row_id].split != "test":
            assert entries[row_id]["expected"] == label
    assert all(entries[i]["split"] == before[i].split for i in entries if i in before)


def test_a_trace_in_test_of_one_dataset_is_never_train_or_validation_of_another(backend):
    root, flags = backend
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS, "--test-fraction", "0.3")
    second = ok("dataset", "create", *flags, "--dataset", OTHER, *LIMITS, "--test-fraction", "0.3")
    one, two = rows_of(flags, DATASET), rows_of(flags, OTHER)

    def traces(rows: dict, test: bool) -> set[str]:
        return {r.metadata["source_root_span_id"] for r in rows.values() if (r.split == "test") == test}

    assert not traces(one, True) & traces(two, False)
    assert not traces(one, False) & traces(two, True)
    placed = second["counts"]["placed_by_traces"]
    assert placed > 0 and any("trace holdout rule" in w for w in second["warnings"])
    why = [json.loads(line) for line in open(Path(second["run_dir"]) / "placed_rows.jsonl")]
    assert sum(p["rule"] == "trace holdout" for p in why) == placed


def test_audit_leaves_test_rows_out_unless_asked_and_records_the_look(backend):
    root, flags = backend
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS, "--test-fraction", "0.3")
    rows = rows_of(flags, DATASET)
    tests = [r for r in rows.values() if r.split == "test"]
    assert tests
    audit = ok("dataset", "audit", *flags, "--dataset", DATASET)
    assert sum(f["rows"] + f["failed"] for f in audit["facets"]) == len(rows) - len(tests)
    assert any(f"{len(tests)} test rows were left out" in w for w in audit["warnings"])
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        assert store.test_touches(TARGET, DATASET) == []
    looked = ok("dataset", "audit", *flags, "--dataset", DATASET, "--split", "test")
    assert sum(f["rows"] + f["failed"] for f in looked["facets"]) == len(tests)
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        touches = store.test_touches(TARGET, DATASET)
    assert {t.facet_name for t in touches} == {r.facet_name for r in tests}
    assert {t.command for t in touches} == {"dataset audit"}
    exported = ok("dataset", "review", "export", str(root / "test.yaml"), *flags, "--dataset", DATASET,
                  "--split", "test", "--only", "all")  # fmt: skip
    assert exported["entries"] == len(tests)
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        commands = [t.command for t in store.test_touches(TARGET, DATASET)]
    assert commands.count("dataset review export") == len({r.facet_name for r in tests})


@pytest.mark.parametrize("backend", ["braintrust"], indirect=True)
def test_skip_upload_then_upload_moves_no_row_the_dataset_holds(backend, tmp_path: Path):
    root, flags = backend
    ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS)
    before = rows_of(flags, DATASET)
    fractions = ["--validation-fraction", "0.5", "--test-fraction", "0.3"]
    # this machine's ledger knows the rows: even --skip-upload (the target not contacted) keeps them
    known = ok("dataset", "create", *flags, "--dataset", DATASET, *LIMITS, "--skip-upload", *fractions)
    assert all(before[i].split == s for i, s in file_splits(known).items() if i in before)
    # another machine (another output root) knows nothing: its run folder splits as if empty
    elsewhere = [*flags[:2], "--output-root", str(tmp_path / "elsewhere"), *flags[4:]]
    blind = ok("dataset", "create", *elsewhere, "--dataset", DATASET, *LIMITS, "--skip-upload", *fractions)
    in_file = file_splits(blind)
    differs = {i for i in in_file if i in before and in_file[i] != before[i].split}
    assert differs, "the fractions should make the run folder's splits differ"
    upload = ok("dataset", "upload", "--run-dir", blind["run_dir"], *elsewhere, "--allow-simulated")
    assert upload["existing_rows"] == len(set(in_file) & set(before))
    moved = f"{len(differs)} row(s) are not in the split the run folder gives them"
    assert any(moved in w for w in upload["warnings"]), upload["warnings"]
    after = rows_of(flags, DATASET)
    assert {i: after[i].split for i in before} == {i: r.split for i, r in before.items()}


def file_splits(summary: dict) -> dict[str, str]:
    lines = (Path(summary["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
    return {row["id"]: row["metadata"]["split"] for row in map(json.loads, lines)}


@pytest.mark.parametrize("backend", ["local"], indirect=True)
def test_the_bundled_samples_duplicate_conversations_share_one_split(backend):
    root, flags = backend
    made = ok("dataset", "create", *flags, "--dataset", DATASET)
    rows = rows_of(flags, DATASET)
    groups: dict[tuple[str, str], list[str | None]] = {}
    for row in rows.values():  # grouped by hand: facet and whitespace-collapsed text
        key = (row.facet_name.lower(), " ".join(row.input["preprocessed_text"].split()))
        groups.setdefault(key, []).append(row.split)
    twins = {k: set(splits) for k, splits in groups.items() if len(splits) > 1}
    assert twins and all(len(splits) == 1 for splits in twins.values())
    assert made["counts"]["placed_by_duplicates"] > 0
    shown = ok("inspect", "dataset", *flags, "--dataset", DATASET)
    assert shown["total"]["duplicate_groups"] == len(twins) and shown["total"]["straddling_groups"] == 0
    table = run_cli("inspect", "dataset", *flags, "--dataset", DATASET)
    in_twins = sum(len(s) for s in groups.values() if len(s) > 1)
    assert "duplicate" in table.stdout and f"{len(twins)} ({in_twins} rows)" in table.stdout
