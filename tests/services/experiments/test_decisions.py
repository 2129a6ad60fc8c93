"""Each compare is recorded in the store; what was decided about a prompt can be asked later."""

from __future__ import annotations

from pathlib import Path

from facetopt.clients.local.store import LocalStore
from facetopt.services.experiments.decisions import prompt_decisions, prompt_kept, record_comparison
from facetopt.services.experiments.inspect import inspect_experiments
from facetopt.services.experiments.registry import open_experiments
from facetopt.settings import load_settings
from tests.services.experiment_fixtures import SHA_V1, SHA_V2, record
from tests.services.experiments.test_compare import compare, rows

FLAGS = {"backend": "local", "dataset": "demo"}


def test_a_kept_prompt_is_found_by_its_candidate_hash(output_root: Path):
    report = compare(
        output_root, rows([True] * 100, [False] * 10 + [True] * 90), rows([True] * 100, [True] * 100)
    )
    assert report.overall.verdict == "KEEP" and report.comparison_id is None
    recorded = record_comparison(output_root / "store.duckdb", report)
    assert recorded.comparison_id and recorded.overall == report.overall

    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        (kept,) = prompt_decisions(store, SHA_V2)
        assert (kept.facet_name, kept.verdict, kept.rule) == ("issues", "KEEP", "target_above_zero")
        assert (kept.baseline_experiment_id, kept.candidate_experiment_id) == ("base", "cand")
        assert (kept.baseline_sha, kept.split, kept.target) == (SHA_V1, "validation", "balanced")
        assert kept.comparison_id == recorded.comparison_id
        assert prompt_kept(store, SHA_V2) == kept
        assert prompt_kept(store, SHA_V2, facet="ISSUES") == kept
        # the baseline's prompt was not the change under test: nothing was decided about it
        assert prompt_decisions(store, SHA_V1) == [] and prompt_kept(store, SHA_V1) is None
        assert prompt_kept(store, SHA_V2, split="train") is None
        assert prompt_decisions(store, SHA_V2, facet="task") == []

    with open_experiments(load_settings(None, output_root=output_root, **FLAGS)) as experiments:
        listed = inspect_experiments(experiments)
    (comparison,) = listed.comparisons
    assert comparison.comparison_id == recorded.comparison_id
    assert (comparison.baseline_experiment_id, comparison.candidate_experiment_id) == ("base", "cand")
    assert comparison.candidate_prompt_hashes == {"issues": SHA_V2}
    assert [(d.facet_name, d.verdict) for d in comparison.decisions] == [
        ("issues", "KEEP"),
        ("overall", "KEEP"),
    ]
    assert comparison.split == "validation" and comparison.target == "balanced"
    assert (comparison.guard_margin, comparison.tolerance, comparison.no_guard) == (0.05, 0.05, [])


def test_the_margin_and_the_guards_left_unchecked_are_recorded_with_the_verdict(output_root: Path):
    # no row has a Factuality score: the guard cannot be assessed; named with --no-guard it is skipped
    unjudged = [
        row.model_copy(update={"scores": {**row.scores, "Factuality": None}})
        for row in rows([True] * 100, [False] * 10 + [True] * 90)
    ]
    fixed = [
        row.model_copy(update={"scores": {**row.scores, "Factuality": None}})
        for row in rows([True] * 100, [True] * 100)
    ]
    blocked = compare(output_root / "blocked", unjudged, fixed)
    assert (blocked.overall.verdict, blocked.overall.rule) == ("INCONCLUSIVE", "guard_unassessed")
    report = compare(output_root, unjudged, fixed, no_guard=["Factuality"], guard_margin=0.06)
    assert report.overall.verdict == "KEEP"
    record_comparison(output_root / "store.duckdb", report)
    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        (comparison,) = store.comparisons()
    assert (comparison.guard_margin, comparison.no_guard) == (0.06, ["Factuality"])
    assert [(d.facet_name, d.verdict, d.unassessed_guards) for d in comparison.decisions] == [
        ("issues", "KEEP", ["Factuality"]),
        ("overall", "KEEP", ["Factuality"]),
    ]


def test_an_inconclusive_or_rejected_prompt_is_not_kept(output_root: Path):
    few = compare(output_root, rows([True, False], [True]), rows([True, True], [True]))
    record_comparison(output_root / "store.duckdb", few)
    loss = compare(
        output_root / "loss", rows([True] * 20, [True] * 20), rows([True] * 20, [False] * 12 + [True] * 8)
    )
    record_comparison(output_root / "loss" / "store.duckdb", loss)
    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        (decision,) = prompt_decisions(store, SHA_V2)
        assert (decision.verdict, decision.rule) == ("INCONCLUSIVE", "too_few_rows")
        assert prompt_kept(store, SHA_V2) is None
    with LocalStore(output_root / "loss" / "store.duckdb", read_only=True) as store:
        assert [d.verdict for d in prompt_decisions(store, SHA_V2)] == ["REJECT"]
        assert prompt_kept(store, SHA_V2) is None


def test_an_unchanged_prompt_kept_by_noise_is_not_a_keep_of_that_prompt(output_root: Path):
    same = {"candidate_record": {"prompt_hashes": {"issues": SHA_V1}}}
    report = compare(
        output_root, rows([True] * 100, [False] * 10 + [True] * 90), rows([True] * 100, [True] * 100), **same
    )
    record_comparison(output_root / "store.duckdb", report)
    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        assert [d.verdict for d in prompt_decisions(store, SHA_V1)] == ["KEEP"]
        assert prompt_kept(store, SHA_V1) is None


def test_an_older_store_without_the_comparisons_table_reads_as_none(tmp_path: Path):
    import duckdb

    path = tmp_path / "store.duckdb"
    with LocalStore(path) as store:
        store.add_experiment(record("x", "2024-01-01T00:00:00Z"))
    conn = duckdb.connect(str(path))
    conn.execute("DROP TABLE comparisons")
    conn.close()
    with LocalStore(path, read_only=True) as store:
        assert store.comparisons() == [] and prompt_kept(store, SHA_V2) is None
