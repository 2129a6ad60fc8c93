"""inspect and compare on the Braintrust backend, against the loopback fake's `/btql`.

The registry holds the runs (as `facetopt eval` leaves them) but not their rows: those are read
with SQL over experiment('<id>'), root eval spans joined with their score child spans.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from facetopt.clients import braintrust as bt
from facetopt.domain.experiments import EvalRow
from facetopt.errors import InputError
from facetopt.services.experiments.compare import compare_experiments
from facetopt.services.experiments.inspect import (
    inspect_dataset,
    inspect_failures,
    inspect_metrics,
    inspect_sql,
)
from facetopt.services.experiments.registry import open_experiments
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services.experiment_fixtures import baseline_rows, dataset_row, eval_row, record, write_store

PROJECT = "facet-evals"


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        yield server


def eval_spans(rows: list[EvalRow]) -> list[dict]:
    """What the SDK logs per row: a root eval span and one score span per scorer."""
    spans = []
    for row in rows:
        root = f"root-{row.id}"
        spans.append(
            {
                "id": root,
                "span_id": root,
                "root_span_id": root,
                "span_attributes": {"type": "eval", "name": "eval"},
                "input": row.input,
                "output": row.output,
                "expected": row.expected,
                "metadata": row.metadata,
                "origin": {"object_type": "dataset", "object_id": "ds", "id": row.id},
            }
        )
        for name, value in row.scores.items():
            spans.append(
                {
                    "id": f"{root}-{name}",
                    "span_id": f"{root}-{name}",
                    "root_span_id": root,
                    "span_parents": [root],
                    "span_attributes": {"type": "score", "name": name},
                    "scores": {name: value},
                }
            )
    return spans


@pytest.fixture
def braintrust_runs(
    fake: FakeBraintrust, output_root: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    project = fake.create_project(PROJECT)
    ids = {}
    candidate_rows = [
        eval_row(r.id, r.expected or "", r.expected or "", r.facet_name, r.split) for r in baseline_rows()
    ]
    for name, rows in (("base", baseline_rows()), ("edit", candidate_rows)):
        experiment = fake.create_experiment(project["id"], name)
        fake.add_experiment_spans(experiment["id"], eval_spans(rows))
        ids[name] = experiment["id"]
    entries = [
        (record(ids["base"], "2024-01-01T00:00:00Z", name="base", backend="braintrust"), None),
        (record(ids["edit"], "2024-01-02T00:00:00Z", name="edit", backend="braintrust"), None),
    ]
    for entry, _ in entries:
        entry.stored_locally = False
    write_store(output_root, entries)
    monkeypatch.setenv("BRAINTRUST_API_KEY", fake.api_key)
    monkeypatch.setenv("BRAINTRUST_APP_URL", fake.url)
    return ids


def open_braintrust(root: Path, **flags):
    return open_experiments(load_settings(None, output_root=root, dataset="demo", **flags))


def test_metrics_and_failures_read_through_btql(fake: FakeBraintrust, braintrust_runs, output_root: Path):
    with open_braintrust(output_root) as experiments:
        assert experiments.backend.name == "braintrust"  # chosen because BRAINTRUST_API_KEY is set
        metrics = inspect_metrics(experiments, "previous", split="validation")
        failures = inspect_failures(experiments, "base", "issues")
    issues = metrics.metrics[0]
    assert (issues.n, issues.tp, issues.fn, issues.tn, issues.fp) == (8, 3, 1, 2, 2)
    assert issues.factuality == pytest.approx(0.625)
    assert [(f.id, f.kind) for f in failures.failures] == [("i4", "fn"), ("i7", "fp"), ("i8", "fp")]
    assert failures.failures[1].permalink == "https://bt.example/trace/i7"
    sent = [r.body["query"] for r in fake.requests_to("/btql")]
    assert any(f"FROM experiment('{braintrust_runs['base']}')" in sql for sql in sent)


def test_compare_braintrust_runs(braintrust_runs, output_root: Path):
    with open_braintrust(output_root) as experiments:
        report = compare_experiments(experiments, "previous", "latest", iterations=400)
    assert report.paired_rows == 11
    issues = next(f for f in report.facets if f.facet_name == "issues")
    assert (issues.mcnemar_b, issues.mcnemar_c) == (0, 3)  # the candidate fixes i4, i7 and i8
    assert report.overall.verdict in ("KEEP", "INCONCLUSIVE")
    match = next(d for d in report.overall.deltas if d.metric == "binary_decision_match")
    assert match.delta == pytest.approx(4 / 11)


def test_sql_names_become_ids_before_reaching_btql(fake: FakeBraintrust, braintrust_runs, output_root: Path):
    with open_braintrust(output_root) as experiments:
        result = inspect_sql(
            experiments,
            "SELECT id, scores.Factuality FROM experiment('base') "
            "WHERE span_attributes.name = 'Factuality' AND scores.Factuality < 0.5",
        )
    assert sorted(row["id"] for row in result.rows) == [
        "root-i4-Factuality",
        "root-i7-Factuality",
        "root-i8-Factuality",
        "root-s3-Factuality",
    ]
    assert result.executed == result.query.replace("'base'", f"'{braintrust_runs['base']}'")


def test_sql_rejected_by_the_server_is_an_input_error(braintrust_runs, output_root: Path):
    with open_braintrust(output_root) as experiments:
        with pytest.raises(InputError, match="Braintrust rejected the SQL query \\(HTTP 400\\).*join"):
            inspect_sql(
                experiments, "SELECT a.id FROM experiment('edit') a JOIN experiment('base') b ON a.id = b.id"
            )


def test_dataset_balance_on_braintrust(fake: FakeBraintrust, braintrust_runs, output_root: Path):
    conn = bt.connect(SecretStr(fake.api_key), app_url=fake.url)
    rows = [
        dataset_row("r1", "issues", "Leaked reasoning", "train"),
        dataset_row("r2", "issues", "none", "validation"),
    ]
    bt.upload_rows(conn, PROJECT, "demo", rows)
    with open_braintrust(output_root, target_project=PROJECT) as experiments:
        report = inspect_dataset(experiments)
        sql = inspect_sql(experiments, "SELECT id FROM dataset('demo') WHERE metadata.split = 'train'")
    assert report.backend == "braintrust"
    assert (report.total.rows, report.total.positive, report.total.train) == (2, 1, 1)
    assert [row["id"] for row in sql.rows] == ["r1"]
