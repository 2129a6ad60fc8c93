"""`facetopt dataset create` on the local backend, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from facetopt.domain.dataset import METADATA_KEYS
from facetopt.facets.data.text import bucket_of
from tests.cli.dataset_helpers import SMALL, create_args, json_out, run_cli


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("state")
    result = run_cli(*create_args(root, *SMALL, "--json"))
    assert result.exit_code == 0, result.stderr
    return root, json_out(result)


@pytest.mark.slow
def test_report_counts_agree_with_the_rows_written(first_run: tuple[Path, dict]) -> None:
    root, summary = first_run
    run_dir = Path(summary["run_dir"])
    rows = [json.loads(line) for line in (run_dir / "dataset_rows.jsonl").read_text().splitlines()]
    assert summary["counts"]["dataset_rows"] == len(rows) > 0
    total = summary["balance"]["total"]
    assert total["rows"] == len(rows)
    assert total["positive"] == sum(bucket_of(r["expected"]) == "positive" for r in rows)
    assert total["validation"] == sum(r["metadata"]["split"] == "validation" for r in rows)
    assert summary["simulated_roles"] == ["labeller"]
    assert any("SIMULATED" in w for w in summary["warnings"])
    # what AGENTS.md does next: stop on a balance warning, else bootstrap, audit, baseline
    if summary["balance"]["warnings"]:
        (step,) = summary["next_steps"]
        assert step["stop"].startswith("the dataset is unbalanced")
        assert step["why"] == "; ".join(summary["balance"]["warnings"])
    else:
        assert [s["command"] for s in summary["next_steps"]] == [
            "facetopt bootstrap",
            "facetopt dataset audit --split validation",
            "facetopt eval --split validation",
        ]


@pytest.mark.slow
def test_rows_keep_the_original_scripts_shape(first_run: tuple[Path, dict]) -> None:
    _, summary = first_run
    rows = [
        json.loads(line)
        for line in (Path(summary["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
    ]
    for row in rows:
        assert tuple(row["metadata"]) == METADATA_KEYS
        facet = row["input"]["facet_name"]
        assert row["id"] == f"{row['metadata']['source_row_id']}:{facet}"
        assert set(row["input"]) == {"facet_name", "preprocessed_text"}
        assert row["tags"] == ["facet-optimizer", facet, bucket_of(row["expected"]), row["metadata"]["split"]]
        assert row["metadata"]["ground_truth_model"] == "simulated:gpt-5.4"


@pytest.mark.slow
def test_every_artifact_is_written(first_run: tuple[Path, dict]) -> None:
    _, summary = first_run
    run_dir = Path(summary["run_dir"])
    for name in (
        "query.sql",
        "candidates.jsonl",
        "facets_query.sql",
        "final_facets.jsonl",
        "parsed_calls.jsonl",
        "facet_prompt.yaml",
        "dataset_rows.jsonl",
        "summary.json",
    ):
        assert (run_dir / name).is_file(), name
    assert "brain-facet-1" in (run_dir / "query.sql").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["run_id"] == summary["run_id"]


@pytest.mark.slow
def test_rerun_pays_nothing_and_keeps_the_same_rows(first_run: tuple[Path, dict]) -> None:
    root, summary = first_run
    again = json_out(run_cli(*create_args(root, *SMALL, "--json")))
    assert again["labels_paid"] == 0
    assert again["labels_from_cache"] == summary["labels_paid"] + summary["labels_from_cache"]
    assert again["run_id"] != summary["run_id"]
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        stored = store.read_rows("Facet optimizer", "Facet groundtruth")
    assert len(stored) == summary["counts"]["dataset_rows"]
    assert again["counts"]["dataset_total_rows"] == len(stored)
    # every row of the re-run was already in the dataset: all of them count as from earlier runs
    assert summary["counts"]["rows_from_earlier_runs"] == 0
    assert again["counts"]["rows_from_earlier_runs"] == again["counts"]["existing_rows"] == len(stored)


def test_a_smaller_run_reports_the_rows_earlier_runs_left(first_run: tuple[Path, dict]) -> None:
    root, summary = first_run
    rows = [
        json.loads(line)
        for line in (Path(summary["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
    ]
    wanted = sorted({r["metadata"]["source_root_span_id"] for r in rows})[0]
    result = run_cli(*create_args(root, "--root-span-id", wanted))
    assert result.exit_code == 0, result.stderr
    this_run = sum(r["metadata"]["source_root_span_id"] == wanted for r in rows)
    total = summary["counts"]["dataset_rows"]
    expected = f"now holds {total} rows, {total} of them from earlier runs ({this_run} written again, their"
    assert expected in " ".join(result.stdout.split())


@pytest.mark.slow
def test_table_output_shows_balance_and_split(tmp_path: Path) -> None:
    result = run_cli(*create_args(tmp_path / "s", *SMALL))
    assert result.exit_code == 0, result.stderr
    assert "validation" in result.stdout and "total" in result.stdout
    assert "backend: local" in result.stderr
    assert result.stdout.splitlines()[-1].startswith("next: ")


@pytest.mark.slow
def test_dry_run_makes_no_model_call_and_writes_no_rows(tmp_path: Path) -> None:
    summary = json_out(run_cli(*create_args(tmp_path / "s", *SMALL, "--dry-run", "--json")))
    assert summary["dry_run"] is True
    assert summary["labels_paid"] == 0
    assert summary["would_label"], summary
    assert not (Path(summary["run_dir"]) / "dataset_rows.jsonl").exists()
    assert not (tmp_path / "s" / "store.duckdb").exists()
    # it says exactly what it wrote: the run folder's files, and nothing else under the output root
    run_dir = Path(summary["run_dir"])
    assert summary["dry_run_wrote"] == sorted(p.name for p in run_dir.iterdir())
    assert [p for p in (tmp_path / "s").iterdir()] == [run_dir]


@pytest.mark.slow
def test_root_span_ids_select_only_those_traces(first_run: tuple[Path, dict], tmp_path: Path) -> None:
    _, summary = first_run
    rows = [
        json.loads(line)
        for line in (Path(summary["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
    ]
    wanted = sorted({r["metadata"]["source_root_span_id"] for r in rows})[:2]
    id_file = tmp_path / "ids.txt"
    id_file.write_text(wanted[1] + "\n")
    result = run_cli(
        *create_args(
            tmp_path / "s", "--root-span-id", wanted[0], "--root-span-id-file", str(id_file), "--json"
        )
    )
    picked = json_out(result)
    got = [
        json.loads(line) for line in (Path(picked["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
    ]
    assert {r["metadata"]["source_root_span_id"] for r in got} == set(wanted)


@pytest.mark.slow
def test_a_test_fraction_holds_out_rows_without_moving_validation(
    first_run: tuple[Path, dict], tmp_path: Path
) -> None:
    _, plain = first_run
    result = run_cli(*create_args(tmp_path, *SMALL, "--test-fraction", "0.25", "--json"))
    assert result.exit_code == 0, result.stderr
    summary = json_out(result)

    def splits(run: dict) -> dict[str, str]:
        lines = (Path(run["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
        return {row["id"]: row["metadata"]["split"] for row in map(json.loads, lines)}

    before, after = splits(plain), splits(summary)
    assert before.keys() == after.keys()
    # validation is exactly the test-fraction-0 validation; test only takes rows that were train
    assert {i for i, s in after.items() if s == "validation"} == {
        i for i, s in before.items() if s == "validation"
    }
    assert all(before[i] == "train" for i, s in after.items() if s == "test")
    assert summary["balance"]["total"]["test"] == sum(s == "test" for s in after.values()) > 0
    assert summary["balance"]["total"]["train"] > 0


def test_fractions_that_leave_no_train_are_refused(tmp_path: Path) -> None:
    result = run_cli(
        *create_args(tmp_path, "--validation-fraction", "0.5", "--test-fraction", "0.5", "--json")
    )
    assert result.exit_code == 1
    assert "leave nothing for train" in json_out(result)["error"]["message"]
    bad = run_cli(*create_args(tmp_path, "--test-fraction", "1.2", "--json"))
    assert bad.exit_code == 1 and "--test-fraction must be in [0, 1)" in json_out(bad)["error"]["message"]
