"""`facetopt eval` as a user runs it: offline on the local backend, --json, and errors with hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from facetopt.cli.eval import eval_command
from facetopt.clients.local.store import LocalStore
from tests.fakes.bt_standin import install_erroring_bt, install_failing_bt
from tests.services.eval.helpers import (
    DATASET,
    FACETS,
    FAIL_MARKER,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)

ROWS = 14
FAILING_ROW = 5


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A stand-in root so `eval` is a subcommand, as in facetopt."""

    app.command("eval")(eval_command)
    return app


def invoke(root: Path, *args: str):
    base = ["eval", "--output-root", str(root), "--target-project", PROJECT, "--dataset", DATASET]
    return CliRunner().invoke(make_app(), [*base, *args])


def seeded_rows():
    rows = make_rows(ROWS)
    failing = rows[FAILING_ROW]
    text = failing.input["preprocessed_text"] + f"\nUser: {FAIL_MARKER}"
    rows[FAILING_ROW] = failing.model_copy(update={"input": {**failing.input, "preprocessed_text": text}})
    return rows


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory):
    """One offline run: local backend, simulated models, SDK runner; one row's model call fails."""
    tmp = tmp_path_factory.mktemp("offline")
    root = seed_local_state(tmp / "state", seeded_rows())
    with isolated_env(tmp, path_without_bt(), FACETOPT_SIMULATED_FAIL=FAIL_MARKER):
        result = invoke(root, "--json")
    return result, root


@pytest.mark.slow
def test_an_offline_run_prints_per_facet_scores_as_json(offline):
    result, _ = offline
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["backend"] == "local" and summary["runner"] == "braintrust-sdk"
    assert summary["simulated_roles"] == ["facet_model", "judge"]
    assert [m["facet_name"] for m in summary["metrics"]] == ["Issues", "Sentiment", "overall"]
    overall = summary["metrics"][-1]
    assert overall["n"] == ROWS and overall["factuality"] is not None
    assert 0 < overall["binary_decision_match"] <= 1
    assert "SIMULATED" in result.stderr and "bt not found" in result.stderr
    assert summary["notes"] == [
        "bt not found: using the braintrust SDK's eval runner (python -m braintrust.cli eval)"
    ]
    # one row's model call failed: fix it and run the same eval again before reading the metrics
    (step,) = summary["next_steps"]
    assert step["command"] == "facetopt eval" and step["why"].startswith("1 row failed")


def test_the_sdk_runner_fallback_is_said_once_per_output_root(tmp_path: Path):
    root = seed_local_state(tmp_path / "state", make_rows(6))
    with isolated_env(tmp_path, path_without_bt()):
        first = invoke(root, "--json", "--max-rows", "2")
        again = invoke(root, "--json", "--max-rows", "2")
        elsewhere = invoke(seed_local_state(tmp_path / "other", make_rows(6)), "--json", "--max-rows", "2")
    assert first.exit_code == again.exit_code == elsewhere.exit_code == 0, again.output
    assert first.stderr.count("bt not found") == 1 and json.loads(first.stdout)["notes"]
    assert "bt not found" not in again.stderr
    assert json.loads(again.stdout)["notes"] == [] and json.loads(again.stdout)["runner"] == "braintrust-sdk"
    assert "bt not found" in elsewhere.stderr  # another output root hears it once too


@pytest.mark.slow
def test_a_label_names_the_run_in_the_registry_and_reserved_words_are_refused(tmp_path: Path):
    root = seed_local_state(tmp_path / "state", make_rows(6))
    with isolated_env(tmp_path, path_without_bt()):
        labelled = invoke(root, "--json", "--max-rows", "2", "--name", "baseline")
        refused = invoke(root, "--json", "--max-rows", "2", "--name", "latest")
    assert labelled.exit_code == 0, labelled.output
    summary = json.loads(labelled.stdout)
    assert summary["label"] == "baseline"
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        (record,) = store.experiments()
    assert (record.experiment_id, record.label) == (summary["experiment_id"], "baseline")
    assert refused.exit_code == 1 and "--name 'latest' cannot name a run" in refused.stderr
    assert "hint: " in refused.stderr and json.loads(refused.stdout)["error"]["exit_code"] == 1


@pytest.mark.slow
def test_a_failed_model_call_is_recorded_on_its_row_and_the_run_completes(offline):
    result, root = offline
    summary = json.loads(result.stdout)
    failing_id = seeded_rows()[FAILING_ROW].id
    assert summary["errors"] == 1 and summary["failed_rows"][0]["id"] == failing_id
    assert "HTTP 500" in summary["failed_rows"][0]["error"]
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        rows = {r.id: r for r in store.experiment_rows(summary["experiment_id"])}
    assert len(rows) == ROWS
    failed = rows[failing_id]
    assert failed.output == "" and failed.error and all(v is None for v in failed.scores.values())
    assert all(r.scores["Factuality"] is not None for r in rows.values() if r.id != failing_id)
    assert sum(m["errored"] for m in summary["metrics"][:-1]) == 1


@pytest.mark.slow
def test_the_run_is_registered_with_its_prompts(offline):
    result, root = offline
    summary = json.loads(result.stdout)
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        (record,) = store.experiments()
        texts = {f.facet_name: store.prompt_text(f.prompt_sha256) for f in FACETS}
    assert record.experiment_id == summary["experiment_id"]
    assert record.experiment_name == "facet-optimizer-brain-facet-1" and record.backend == "local"
    assert record.prompt_hashes == {f.facet_name: f.prompt_sha256 for f in FACETS}
    assert record.row_count == ROWS and record.error_count == 1 and record.stored_locally
    assert record.prompt_file == str(root / "facet_definitions.yaml")
    assert texts == {f.facet_name: f.prompt_text for f in FACETS}


def test_a_facet_missing_from_the_prompt_file_is_one_error_line_naming_the_known_ones(tmp_path):
    root = seed_local_state(tmp_path / "state", make_rows(4), facets=FACETS[:1])
    result = CliRunner().invoke(
        make_app(),
        ["eval", "--output-root", str(root), "--target-project", PROJECT, "--dataset", DATASET, "--json"],
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["hint"].startswith("known facets: Issues;")
    assert "error: facet 'Sentiment' of the dataset is not in the prompt file" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--facet", "Task"], "error: --facet Task left no rows"),
        (["--split", "validation", "--row-id", "nope"], "error: --row-id left no rows"),
        (["--dataset", "missing"], "error: no local dataset 'missing' in project 'support-bot'"),
        (["--prompt", "nowhere.yaml"], "prompt file not found"),
    ],
)
def test_bad_input_is_one_error_line_with_a_hint(tmp_path, args, message):
    root = seed_local_state(tmp_path / "state", make_rows(4))
    result = invoke(root, *args)
    assert result.exit_code == 1
    assert message in result.stderr and "hint: " in result.stderr


def test_a_failing_runner_shows_its_stderr_tail(tmp_path, monkeypatch):
    root = seed_local_state(tmp_path / "state", make_rows(2))
    install_failing_bt(
        tmp_path / "bin", 3, ["connecting to api.braintrust.dev", "fatal: network unreachable"]
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{path_without_bt()}")
    result = invoke(root)
    assert result.exit_code == 1
    assert "error: the eval runner (bt) exited with code 3:" in result.stderr
    assert "fatal: network unreachable" in result.stderr
    assert "runner.log" in result.stderr


def test_every_row_failing_exits_1_but_the_run_is_still_registered(tmp_path, monkeypatch):
    root = seed_local_state(tmp_path / "state", make_rows(3))
    install_erroring_bt(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{path_without_bt()}")
    result = invoke(root)
    assert result.exit_code == 1
    assert "error: every row failed (3 rows)" in result.stderr and "HTTP 503" in result.stderr
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        (record,) = store.experiments()
    assert record.error_count == 3 and record.row_count == 3
