"""Splits are sticky: a row the dataset already holds keeps its split when a later run, under another
split seed (a differently named export of the same traces), writes to the same dataset."""

from __future__ import annotations

from facetopt.clients.local.store import LocalStore
from tests.cli.dataset_helpers import create_args, json_out, run_cli


def test_a_renamed_source_moves_no_existing_row_and_says_the_seed_differs(tmp_path):
    root = tmp_path / "state"
    first = run_cli(*create_args(root, "--positive-limit", "8", "--negative-limit", "8", "--json"))
    assert first.exit_code == 0, first.stderr
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        before = {r.id: r.split for r in store.read_rows("Facet optimizer", "Facet groundtruth")}
        seeds_before = {
            r.metadata["split_seed"] for r in store.read_rows("Facet optimizer", "Facet groundtruth")
        }
    assert len(seeds_before) == 1
    assert next(iter(seeds_before)).endswith(":Facet optimizer:Facet groundtruth")

    second = run_cli(
        *create_args(
            root,
            "--source-project",
            "Renamed export",
            "--positive-limit",
            "12",
            "--negative-limit",
            "12",
            "--json",
        )
    )
    assert second.exit_code == 0, second.stderr
    summary = json_out(second)
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        after = {r.id: r for r in store.read_rows("Facet optimizer", "Facet groundtruth")}
    moved = [row_id for row_id, split in before.items() if after[row_id].split != split]
    assert moved == []
    new = [r for row_id, r in after.items() if row_id not in before]
    assert new, "the larger limits should bring new rows"
    assert {r.metadata["split_seed"] for r in new} == {"Renamed export:Facet optimizer:Facet groundtruth"}
    assert any("split seed" in w and "differs" in w for w in summary["warnings"]), summary["warnings"]
    # a kept split keeps the seed that placed it
    assert {after[row_id].metadata["split_seed"] for row_id in before} == seeds_before
