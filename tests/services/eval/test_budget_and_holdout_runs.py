"""Real offline eval runs (SDK runner, simulated models): the sixth validation eval warns, and a run
on the test split is recorded as a look at the holdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from facetopt.clients.local.store import LocalStore
from facetopt.facets.decide.cost import cost_of, price_for
from tests.services.eval.helpers import (
    DATASET,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)
from tests.services.experiment_fixtures import record


def run_eval(root: Path, *args: str):
    base = ["eval", "--output-root", str(root), "--target-project", PROJECT, "--dataset", DATASET, "--json"]
    return CliRunner().invoke(app, [*base, *args])


@pytest.mark.slow
def test_the_sixth_validation_eval_warns_and_a_look_at_test_is_recorded(tmp_path: Path):
    """One real run (the runner is slow to start) over validation and test rows."""
    rows = make_rows(6)
    rows[0] = rows[0].model_copy(update={"metadata": {**rows[0].metadata, "split": "test"}})
    root = seed_local_state(tmp_path / "state", rows)
    with LocalStore(root / "store.duckdb") as store:
        for i in range(5):
            hashes = {"Issues": f"{i}" * 64, "Sentiment": "s" * 64}
            earlier = record(f"old{i}", f"2026-01-0{i + 1}T00:00:00Z", dataset=DATASET, prompt_hashes=hashes)
            store.add_experiment(earlier.model_copy(update={"split": "validation" if i else None}))
        store.add_experiment(record("tr", "2026-01-08T00:00:00Z", dataset=DATASET, split="train"))
    with isolated_env(tmp_path, path_without_bt()):
        result = run_eval(root, "--split", "validation,test")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 2  # the test row of Issues and the validation row of Sentiment
    assert summary["validation_evals"] == {"Issues": 6, "Sentiment": 6}
    # every paid call's usage as its reply reported it (the simulation reports tokens), the judge's too
    usage = {u["role"]: u for u in summary["usage"]}
    assert set(usage) == {"facet model", "judge"}
    for role in usage.values():
        assert (
            role["calls"] == summary["rows"] > 0
            and role["prompt_tokens"] > 0
            and role["completion_tokens"] > 0
        )
        price = price_for(role["model"], {})[0]
        assert role["cost_usd"] == pytest.approx(
            cost_of(role["prompt_tokens"], role["completion_tokens"], price)
        )
    stderr = " ".join(result.stderr.split())  # rich wraps long warnings
    assert "facet Issues: validation eval number 6" in stderr and "about five experiments" in stderr

    with LocalStore(root / "store.duckdb", read_only=True) as store:
        [touch] = store.test_touches(PROJECT, DATASET)
        [entry] = [r for r in store.experiments() if r.experiment_id == summary["experiment_id"]]
    assert entry.test_facets == ["Issues"]  # what publish reads: the dataset holds a test split of Issues
    assert (touch.facet_name, touch.experiment_id, touch.command) == (
        "Issues",
        summary["experiment_id"],
        "eval",
    )
    assert touch.prompt_sha == summary["prompt_hashes"]["Issues"] and not touch.forced
