"""Helpers for tests that run facetopt against the loopback Braintrust fake: the environment of
a run, and the bundled sample as Braintrust holds it. (The `fast_retries` fixture is in
tests/conftest.py: a module opts in with `pytestmark = pytest.mark.usefixtures("fast_retries")`.)
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.braintrust_server import FakeBraintrust


def braintrust_env(fake: FakeBraintrust, key: str | None = None) -> dict[str, str]:
    """The environment of a braintrust-backend run against the fake, with the SIMULATED labeller
    (without a ground-truth base, the Braintrust key would send labels to the fake's proxy)."""
    return {
        "BRAINTRUST_API_KEY": key or fake.api_key,
        "BRAINTRUST_APP_URL": fake.url,
        "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": "simulated://",
    }


def sample_spans(folder: Path) -> list[dict]:
    """The bundled sample as Braintrust would hold it: rows that are JSON objects with an id, their
    JSON-encoded `metadata` / `span_attributes` (as some exports write them) stored as objects."""
    from facetopt.clients.local.source import load_sample_spans

    spans = []
    for line in load_sample_spans(folder).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("id", "root_span_id")):
            continue
        for name in ("metadata", "span_attributes"):
            if isinstance(row.get(name), str) and row[name].startswith("{"):
                row[name] = json.loads(row[name])
        spans.append(row)
    return spans
