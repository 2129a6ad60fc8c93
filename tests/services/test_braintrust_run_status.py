"""Run status and errors on the Braintrust backend, against the loopback fake's `/btql`: a partial
run whose rows reached Braintrust after facetopt gave up is reconciled when next read (and one whose
rows did not stays partial, with the count Braintrust confirms); rows the eval logged with
`metadata.eval_error` read back as errors in `inspect metrics` and `inspect failures`."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from facetopt.services.experiments.inspect import inspect_failures, inspect_metrics
from facetopt.services.experiments.registry import open_experiments
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services.experiment_fixtures import eval_row, record, write_store
from tests.services.experiments.test_inspect_braintrust import eval_spans

PROJECT = "facet-evals"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeBraintrust() as server:
        monkeypatch.setenv("BRAINTRUST_API_KEY", server.api_key)
        monkeypatch.setenv("BRAINTRUST_APP_URL", server.url)
        yield server


def _rows(n: int, prefix: str):
    return [eval_row(f"{prefix}{i}", "none", "none") for i in range(n)]


def _partial(experiment_id: str, name: str, created: str, selected: int, logged: int):
    entry = record(experiment_id, created, name=name, backend="braintrust").model_copy(
        update={
            "status": "partial",
            "status_cause": "Braintrust did not take the eval's logs within the flush deadline",
            "logged_rows": logged,
            "selected_rows": selected,
            "scored_results": selected,
        }
    )
    return entry


def test_a_partial_run_whose_rows_landed_later_is_reconciled_when_next_read(
    fake: FakeBraintrust, output_root: Path
):
    project = fake.create_project(PROJECT)
    landed = fake.create_experiment(project["id"], "landed", metadata={"facetopt_status": "running"})
    fake.add_experiment_spans(landed["id"], eval_spans(_rows(4, "a")))
    short = fake.create_experiment(project["id"], "short")
    short_rows = _rows(4, "b")
    spans = eval_spans(short_rows[:3])
    # the third case's root span reached Braintrust before its output did: not a row it holds
    next(s for s in spans if s["id"] == "root-b2")["output"] = None
    fake.add_experiment_spans(short["id"], spans)
    write_store(
        output_root,
        [
            (_partial(landed["id"], "landed", "2024-01-02T00:00:00Z", selected=4, logged=1), _rows(4, "a")),
            (_partial(short["id"], "short", "2024-01-03T00:00:00Z", selected=4, logged=0), _rows(4, "b")),
        ],
    )
    said: list[str] = []
    settings = load_settings(
        None, output_root=output_root, dataset="demo", project=PROJECT, dataset_project="proj"
    )
    with open_experiments(settings, said.append) as experiments:
        latest = experiments.resolve("latest")
    assert latest.experiment_id == landed["id"]  # complete now; `short` is still partial
    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        after = {r.experiment_name: r for r in store.experiments()}
    assert (after["landed"].status, after["landed"].status_cause) == ("complete", None)
    assert (after["short"].status, after["short"].logged_rows) == ("partial", 2)
    assert f"experiment 'landed' ({landed['id']}): all 4 of its rows have reached Braintrust" in "\n".join(
        said
    )
    assert f"experiment 'short' ({short['id']}): Braintrust now holds 2 of its 4 rows; still partial" in said
    assert fake._store.experiments[landed["id"]]["metadata"]["facetopt_status"] == "complete"

    said.clear()
    with open_experiments(settings, said.append):
        pass
    assert [m for m in said if m.startswith("experiment")] == []  # nothing new in Braintrust


def test_rows_logged_with_eval_error_read_back_as_errors(fake: FakeBraintrust, output_root: Path):
    project = fake.create_project(PROJECT)
    rows = [eval_row(f"e{i}", "Leaked reasoning" if i % 2 else "none", "") for i in range(4)]
    for row in rows:  # as the eval logs a failed model call: output "", every score None
        row.metadata["eval_error"] = "HTTP 500: upstream failed"
        row.scores = dict.fromkeys(row.scores)
    experiment = fake.create_experiment(project["id"], "all-failed")
    fake.add_experiment_spans(experiment["id"], eval_spans(rows))
    entry = record(experiment["id"], "2024-01-02T00:00:00Z", name="all-failed", backend="braintrust")
    entry.stored_locally = False
    write_store(output_root, [(entry, None)])
    settings = load_settings(
        None, output_root=output_root, dataset="demo", project=PROJECT, dataset_project="proj"
    )
    with open_experiments(settings) as experiments:
        metrics = inspect_metrics(experiments, experiment["id"])
        failures = inspect_failures(experiments, experiment["id"], "issues")
    (issues,) = [m for m in metrics.metrics if m.facet_name == "issues"]
    assert (issues.n, issues.errored) == (4, 4)
    assert failures.counts["error"] == 4 and failures.failure_count == 4
    assert {f.error for f in failures.failures} == {"HTTP 500: upstream failed"}
