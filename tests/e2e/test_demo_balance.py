"""The demo's dataset passes its own balance guardrail: every facet has enough positive and negative rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facetopt.facets.data.balance import MIN_ROWS_PER_FACET
from tests.e2e.helpers import DemoRun

pytestmark = pytest.mark.e2e


def test_every_facet_of_the_demo_dataset_has_enough_rows_in_both_buckets(demo_run: DemoRun):
    dataset_summary = json.loads((Path(demo_run.summary["run_dir"]) / "summary.json").read_text())
    balance = dataset_summary["balance"]
    facets = {facet["facet_name"]: facet for facet in balance["facets"]}
    assert set(facets) == {"issues", "sentiment", "task"}
    for name, facet in facets.items():
        assert min(facet["positive"], facet["negative"]) >= MIN_ROWS_PER_FACET, (name, facet)
    warnings = " ".join(balance["warnings"] + dataset_summary["warnings"])
    assert "no negative rows" not in warnings and "no positive rows" not in warnings
    assert f"fewer than {MIN_ROWS_PER_FACET}" not in warnings
