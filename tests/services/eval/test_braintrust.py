"""`facetopt eval` on the braintrust backend: rows from a Braintrust dataset, the experiment logged
through the stand-in `bt` to the loopback fake Braintrust API, the run recorded in the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from facetopt.clients.braintrust import connect, upload_rows
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import write_new_prompt_file
from facetopt.services.eval.run import EvalOptions, EvalSummary, run_eval
from facetopt.services.experiments.inspect import inspect_sql
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.bt_standin import bt_calls, install_bt
from tests.services import sql_recipes as recipes
from tests.services.eval.helpers import DATASET, FACETS, PROJECT, isolated_env, make_rows, path_without_bt

pytestmark = pytest.mark.slow

ROWS = 8


@dataclass
class LoggedRun:
    summary: EvalSummary
    fake: FakeBraintrust
    project_id: str
    calls: list[dict]
    messages: list[str]
    store_path: object
    tmp: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedRun]:
    tmp = tmp_path_factory.mktemp("braintrust")
    root = tmp / "state"
    root.mkdir()
    write_new_prompt_file(root / "facet_definitions.yaml", FACETS)
    bin_dir = tmp / "bin"
    install_bt(bin_dir)
    messages: list[str] = []
    with FakeBraintrust() as fake:
        env = {"BRAINTRUST_API_KEY": fake.api_key, "BRAINTRUST_APP_URL": fake.url}
        with isolated_env(tmp, f"{bin_dir}:{path_without_bt()}", **env):
            upload_rows(connect(fake.api_key, app_url=fake.url), PROJECT, DATASET, make_rows(ROWS))
            summary = run_eval(
                load_settings(
                    None,
                    **{
                        "output_root": root,
                        "target_project": PROJECT,
                        "dataset": DATASET,
                        "api_base": "simulated://",
                        "judge_api_base": "simulated://",
                    },
                ),
                options=EvalOptions(),
                progress=SilentProgress(),
                announce=messages.append,
                warn=messages.append,
            )
        project_id = fake.create_project(PROJECT)["id"]  # returns the existing project
        yield LoggedRun(
            summary, fake, project_id, bt_calls(bin_dir), messages, root / "store.duckdb", tmp, env
        )


def test_the_experiment_is_created_in_the_project_and_named_after_the_model(logged):
    (created,) = logged.fake.requests_to("/v1/experiment", "POST")
    assert created.body["project_id"] == logged.project_id
    assert created.body["name"] == "facet-optimizer-brain-facet-1"
    assert created.body["metadata"]["dataset"] == DATASET
    assert set(created.body["metadata"]["prompt_hashes"]) == {"Issues", "Sentiment"}
    assert logged.summary.experiment_name == "facet-optimizer-brain-facet-1"
    assert logged.summary.backend == "braintrust" and logged.summary.runner == "bt"


def test_every_row_is_logged_with_its_scores_and_the_summary_is_read(logged):
    experiment_id = logged.summary.experiment_id
    assert logged.fake.requests_to("/logs3", "POST")
    rows = logged.fake.experiment_rows(experiment_id)
    roots = [r for r in rows if (r.get("span_attributes") or {}).get("type") == "eval"]
    assert sorted(r["metadata"]["dataset_row_id"] for r in roots) == sorted(r.id for r in make_rows(ROWS))
    score_spans = [r for r in rows if (r.get("span_attributes") or {}).get("type") == "score"]
    names = {s["span_attributes"]["name"] for s in score_spans}
    assert names == {"binary_classification_scores", "sentiment_label_correct", "Factuality"}
    binary = [s for s in score_spans if s["span_attributes"]["name"] == "binary_classification_scores"]
    assert len(binary) == ROWS
    assert all(
        set(s["scores"]) == {"binary_decision_match", "positive_recall", "negative_specificity"}
        for s in binary
    )
    ids = {r.id for r in make_rows(ROWS)}
    assert {s["input"]["metadata"]["dataset_row_id"] for s in binary} == ids
    assert {"prompt_file", "facet_name", "facet_prompt_sha256", "facet_model"} <= set(roots[0]["metadata"])
    assert logged.fake.requests_to(f"/v1/experiment/{experiment_id}/summarize", "GET")
    assert logged.summary.url.startswith("http://127.0.0.1:")
    assert logged.summary.url.endswith("/experiments/facet-optimizer-brain-facet-1")


def test_bt_logs_in_from_the_environment_and_the_run_is_registered(logged):
    (call,) = logged.calls
    assert call["argv"][:2] == ["eval", "--jsonl"] and "--no-send-logs" not in call["argv"]
    assert "BRAINTRUST_API_KEY" in call["env_names"] and call["key_in_argv"] is False
    assert any("SIMULATED" in m for m in logged.messages)
    with LocalStore(logged.store_path, read_only=True) as store:
        (record,) = store.experiments()
        assert not store.has_experiment_rows(record.experiment_id)  # Braintrust holds the rows
    assert record.experiment_id == logged.summary.experiment_id and record.url == logged.summary.url
    assert record.stored_locally is False and record.simulated_roles == ["facet_model", "judge"]
    assert record.row_count == ROWS and record.error_count == 0


def test_the_original_sql_recipes_answer_on_the_braintrust_experiment(logged):
    """The fake /btql answers from the spans the real SDK logged; facetopt's own table must agree."""
    experiment_id = logged.summary.experiment_id
    flags = {"output_root": logged.store_path.parent, "target_project": PROJECT, "backend": "braintrust"}
    with isolated_env(logged.tmp, path_without_bt(), **logged.env):
        with open_experiments(load_settings(None, **flags), lambda message: None) as experiments:
            per_facet = recipes.by_facet(
                inspect_sql(experiments, recipes.PER_FACET_BINARY.format(experiment=experiment_id)).rows
            )
            factuality = recipes.by_facet(
                inspect_sql(experiments, recipes.FACTUALITY_BY_FACET.format(experiment=experiment_id)).rows
            )
            failed = inspect_sql(
                experiments, recipes.FAILED_ROWS.format(experiment=experiment_id, facet="Issues")
            ).rows
    metrics = {m.facet_name: m for m in logged.summary.metrics if m.facet_name != "overall"}
    assert set(per_facet) == set(metrics) == set(factuality)
    for name, m in metrics.items():
        assert per_facet[name]["n"] == m.n == factuality[name]["n"]
        assert per_facet[name]["binary_decision_match"] == pytest.approx(m.binary_decision_match)
        assert per_facet[name]["positive_recall"] == pytest.approx(m.positive_recall)
        assert per_facet[name]["negative_specificity"] == pytest.approx(m.negative_specificity)
        assert factuality[name]["factuality"] == pytest.approx(m.factuality)
    spans = logged.fake.experiment_rows(experiment_id)
    expected_failed = {
        s["input"]["metadata"]["dataset_row_id"]
        for s in spans
        if (s.get("span_attributes") or {}).get("name") == "binary_classification_scores"
        and s["input"]["metadata"]["facet_name"] == "Issues"
        and s["scores"]["binary_decision_match"] == 0
    }
    assert {r["dataset_row_id"] for r in failed} == expected_failed
    assert all(r["split"] and "expected" in r and "output" in r for r in failed)


def test_the_experiment_id_is_the_one_the_eval_wrote_from_the_sdk(logged):
    (run_dir,) = (logged.store_path.parent / "evals").iterdir()
    lines = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    ids = {line["experiment"]["id"] for line in lines if "experiment" in line}
    assert ids == {logged.summary.experiment_id}
    assert logged.summary.experiment_id in logged.fake._store.experiments  # an id Braintrust issued
