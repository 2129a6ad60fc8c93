"""`facetopt publish` against the loopback Braintrust fake and on the local backend: evidence
before publishing, the original publish request shape, and a read-back after."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import load_prompt_file, save_prompt_file, write_new_prompt_file
from facetopt.domain.experiments import EvalRow, ExperimentRecord
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services.eval.helpers import DATASET, FACETS, PROJECT

runner = CliRunner()


def record_validation_run(
    root: Path, facet: str, sha: str, label_model: str = "gpt-5.4", split: str = "validation", **extra
) -> str:
    """A run of the registry that scored `sha` on `split` rows of `facet` (rows kept locally)."""
    experiment_id = f"exp-{len(list(root.glob('*')))}-{sha[:6]}-{label_model[:3]}-{split}"
    record = ExperimentRecord(
        experiment_id=experiment_id,
        experiment_name="facet-optimizer-brain-facet-1",
        backend=extra.get("backend", "braintrust"),
        model="brain-facet-1",
        dataset=DATASET,
        dataset_project=PROJECT,
        split=split,
        prompt_hashes={facet: sha},
        row_count=2,
        created=datetime.now(UTC).isoformat(),
        simulated_roles=extra.get("simulated_roles", []),
        test_facets=extra.get("test_facets"),
    )
    rows = [
        EvalRow(
            id=f"row-{i}:{facet}",
            facet_name=facet,
            split=split,
            output="NONE",
            expected="NONE",
            scores={"binary_decision_match": 1.0},
            metadata={"split": split, "ground_truth_model": label_model},
        )
        for i in range(2)
    ]
    with LocalStore(root / "store.duckdb") as store:
        store.add_experiment(record, rows)
    return experiment_id


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    root.mkdir()
    write_new_prompt_file(root / "facet_definitions.yaml", FACETS)
    return root


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        yield server


def publish(root: Path, fake: FakeBraintrust | None, *args: str):
    env = {"FACET_OPTIMIZER_OUTPUT_ROOT": str(root)}
    if fake is not None:
        env |= {"BRAINTRUST_API_KEY": fake.api_key, "BRAINTRUST_APP_URL": fake.url}
    return runner.invoke(app, ["publish", *args], env=env)


def issues_sha(root: Path) -> str:
    return load_prompt_file(root / "facet_definitions.yaml").facet("Issues").prompt_sha256


def test_a_kept_prompt_publishes_in_the_original_shape_and_reads_back(state, fake):
    experiment_id = record_validation_run(state, "Issues", issues_sha(state))
    record_decision(state, "Issues", issues_sha(state), "KEEP")
    result = publish(state, fake, "--facet", "Issues", "--project", "Facets prod", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (function,) = report["functions"]
    assert function["status"] == "published" and function["slug"] == "facet-optimizer-issues"
    (register,) = fake.requests_to("/api/project/register", "POST")
    assert register.body["project_name"] == "Facets prod"
    (insert,) = fake.requests_to("/insert-functions", "POST")
    (sent,) = insert.body["functions"]
    assert sent["function_type"] == "facet" and sent["if_exists"] == "replace"
    assert sent["name"] == "Issues" and sent["tags"] == ["facet-optimizer", "Issues"]
    assert sent["function_data"] == {
        "type": "facet",
        "prompt": FACETS[0].prompt_text,
        "model": "brain-facet-1",
    }
    assert sent["metadata"]["prompt_sha256"] == issues_sha(state)
    assert sent["metadata"]["facet_name"] == "Issues" and sent["metadata"]["project"] == "Facets prod"
    (stored,) = fake.functions()
    assert stored["id"] == function["function_id"] and stored["function_data"] == sent["function_data"]
    assert fake.requests_to("/v1/function", "GET"), "the function was not read back"
    with LocalStore(state / "store.duckdb", read_only=True) as store:
        (published,) = store.publications(issues_sha(state))
    assert published["function_id"] == stored["id"] and published["experiment_ids"] == [experiment_id]
    assert published["slug"] == "facet-optimizer-issues"


def test_a_second_publish_with_if_exists_error_is_refused_cleanly_and_its_dry_run_says_so(state, fake):
    record_validation_run(state, "Issues", issues_sha(state))
    record_decision(state, "Issues", issues_sha(state), "KEEP")
    assert publish(state, fake, "--facet", "Issues").exit_code == 0
    again = publish(state, fake, "--facet", "Issues", "--if-exists", "error")
    assert again.exit_code == 1
    assert "error: a function with slug 'facet-optimizer-issues' already exists" in again.stderr
    assert "--if-exists replace" in again.stderr and "Traceback" not in again.output
    dry = publish(state, fake, "--facet", "Issues", "--if-exists", "error", "--dry-run", "--json")
    assert dry.exit_code == 1 and json.loads(dry.stdout)["outcome"] == "would_refuse"
    assert "a function with slug 'facet-optimizer-issues' already exists" in json.loads(dry.stdout)["reason"]
    assert len(fake.requests_to("/insert-functions", "POST")) == 1


def test_an_edited_never_evaluated_prompt_is_refused_without_force(state, fake):
    record_validation_run(state, "Issues", issues_sha(state))
    doc = load_prompt_file(state / "facet_definitions.yaml")
    doc.append_to_prompt("Issues", "Return only the facet value.")
    save_prompt_file(doc)
    refused = publish(state, fake, "--facet", "Issues")
    assert refused.exit_code == 1
    assert "never evaluated on a validation split" in refused.stderr
    assert "facetopt eval --split validation --facet Issues" in refused.stderr
    assert not fake.requests_to("/insert-functions", "POST")
    forced = publish(state, fake, "--facet", "Issues", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["forced"] is True
    assert fake.functions()[0]["function_data"]["prompt"].endswith("Return only the facet value.")


def test_simulated_labels_are_not_evidence(state, fake):
    record_validation_run(state, "Issues", issues_sha(state), label_model="simulated:gpt-5.4")
    refused = publish(state, fake, "--facet", "Issues")
    assert refused.exit_code == 1 and "SIMULATED" in refused.stderr
    dry = publish(state, fake, "--facet", "Issues", "--dry-run", "--json")
    (step,) = json.loads(dry.stdout)["next_steps"]
    assert step["stop"] == "Issues lacks evidence (simulated_only): do not publish"
    assert "never an agent's" in step["why"] and "command" not in step


def test_a_readback_that_differs_is_an_error_that_still_says_the_function_was_inserted(
    state, fake, monkeypatch
):
    from tests.fakes import braintrust_functions

    record_validation_run(state, "Issues", issues_sha(state))
    record_decision(state, "Issues", issues_sha(state), "KEEP")
    original = braintrust_functions.list_functions

    def tampered(*args, **kwargs):
        listed = original(*args, **kwargs)
        for fn in listed["objects"]:
            fn["function_data"]["model"] = "brain-facet-2"
        return listed

    monkeypatch.setattr(braintrust_functions, "list_functions", tampered)
    result = publish(state, fake, "--facet", "Issues", "--json")
    assert result.exit_code == 1
    assert "reads back different from what was sent: model is 'brain-facet-2'" in result.stderr
    (function,) = json.loads(result.stdout)["functions"]
    assert function["status"] == "unverified" and function["function_id"] == fake.functions()[0]["id"]
    with LocalStore(state / "store.duckdb", read_only=True) as store:
        assert store.publications() == []


def test_dry_run_sends_nothing_and_refuses_as_the_real_run_would(state, fake):
    result = publish(state, fake, "--dry-run", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "would_refuse" and report["reason"].startswith(
        "not published: Issues: prompt"
    )
    assert [f["status"] for f in report["functions"]] == ["would_refuse", "would_refuse"]
    assert [e["status"] for e in report["evidence"]] == ["never_evaluated", "never_evaluated"]
    assert [d["slug"] for d in report["definitions"]] == [
        "facet-optimizer-issues",
        "facet-optimizer-sentiment",
    ]
    assert [d["name"] for d in report["definitions"]] == ["Issues facet", "Sentiment facet"]
    real = publish(state, fake)
    assert real.exit_code == 1 and f"error: {report['reason']}" in real.stderr
    # reads only: logins and queries, never a project registration or a function insert
    writes = {r.path for r in fake.requests if r.method != "GET"}
    assert writes <= {"/api/apikey/login", "/btql"}, writes
    # neither prompt was ever evaluated: evaluate them (one command for both), never --force
    assert [s["command"] for s in report["next_steps"]] == ["facetopt eval --split validation"]
    shown = publish(state, fake, "--dry-run")
    assert shown.stdout.splitlines()[-1] == "next: facetopt eval --split validation"


def test_slug_and_facet_name_need_one_facet(state):
    result = publish(state, None, "--slug", "x", "--dry-run")
    assert result.exit_code == 1 and "--slug names one function, but 2 facets" in result.stderr


def test_the_local_backend_writes_what_would_be_sent(state):
    record_validation_run(state, "Issues", issues_sha(state), backend="local")
    record_decision(state, "Issues", issues_sha(state), "KEEP")
    result = publish(state, None, "--facet", "Issues", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    written = Path(report["output_file"])
    assert written.parent == state / "published"
    assert json.loads(written.read_text())["functions"] == report["definitions"]
    assert report["functions"][0]["status"] == "written"


def record_decision(
    root: Path,
    facet: str,
    candidate_sha: str,
    verdict: str,
    split: str = "validation",
    backend: str = "braintrust",
) -> None:
    """A recorded `facetopt compare` on `split` whose candidate had `candidate_sha` for `facet`."""
    import uuid

    from facetopt.domain.experiments import ComparisonRecord, FacetDecision

    record = ComparisonRecord(
        comparison_id=f"cmp-{verdict}-{uuid.uuid4().hex[:8]}",
        created=datetime.now(UTC).isoformat(),
        backend=backend,
        dataset=DATASET,
        baseline_experiment_id="exp-base",
        baseline_experiment_name="base",
        candidate_experiment_id="exp-cand",
        candidate_experiment_name="cand",
        split=split,
        target="balanced",
        tolerance=0.02,
        overall_verdict=verdict,
        decisions=[
            FacetDecision(
                facet_name=facet,
                verdict=verdict,
                rule="target_below_zero" if verdict == "REJECT" else "target_above_zero",
                paired_rows=40,
                baseline_sha="0" * 64,
                candidate_sha=candidate_sha,
            )
        ],
    )
    with LocalStore(root / "store.duckdb") as store:
        store.add_comparison(record)


def test_a_prompt_whose_newest_comparison_rejected_it_needs_force(state, fake):
    record_validation_run(state, "Issues", issues_sha(state))
    record_decision(state, "Issues", issues_sha(state), "REJECT")
    refused = publish(state, fake, "--facet", "Issues")
    assert refused.exit_code == 1
    assert "said REJECT" in refused.stderr and "--force" in refused.stderr
    assert not fake.requests_to("/insert-functions", "POST")


def test_a_kept_prompt_publishes_and_names_its_comparison(state, fake):
    record_validation_run(state, "Issues", issues_sha(state))
    record_decision(state, "Issues", issues_sha(state), "KEEP")
    result = publish(state, fake, "--facet", "Issues", "--json")
    assert result.exit_code == 0, result.output
    (evidence,) = json.loads(result.stdout)["evidence"]
    assert evidence["status"] == "evaluated" and evidence["decision"]["verdict"] == "KEEP"
    assert "kept by the comparison exp-base -> exp-cand" in evidence["message"]


def test_once_the_dataset_holds_a_test_split_the_evidence_is_a_keep_on_test(state):
    sha = issues_sha(state)
    # evaluated and kept on validation, and the run saw test rows of Issues in the dataset
    record_validation_run(state, "Issues", sha, backend="local", test_facets=["Issues"])
    record_decision(state, "Issues", sha, "KEEP", backend="local")
    refused = publish(state, None, "--facet", "Issues")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert f"dataset '{DATASET}' holds a test split of Issues" in refused.stderr
    assert "eval --split test --facet Issues" in refused.stderr  # 0 versions have read test: allowed
    # the baseline's look at test is not this prompt's
    base_run = record_validation_run(state, "Issues", "0" * 64, backend="local", split="test")
    assert publish(state, None, "--facet", "Issues").exit_code == 1
    test_run = record_validation_run(state, "Issues", sha, backend="local", split="test")
    # evaluated on test but never compared there: no evidence; the hint names the comparison to run
    uncompared = publish(state, None, "--facet", "Issues", "--json")
    assert uncompared.exit_code == 1
    assert "never compared as the candidate" in uncompared.stderr
    assert f"facetopt compare {base_run} {test_run} --split test --facet Issues" in uncompared.stderr
    record_decision(state, "Issues", sha, "KEEP", split="test", backend="local")
    result = publish(state, None, "--facet", "Issues", "--json")
    assert result.exit_code == 0, result.output
    (evidence,) = json.loads(result.stdout)["evidence"]
    assert evidence["status"] == "evaluated" and evidence["test_experiments"] == [test_run]
    assert evidence["message"].startswith(f"evaluated on test with real labels in {test_run}")
    assert json.loads(result.stdout)["functions"][0]["evidence_experiments"] == [test_run]


def test_a_recorded_look_at_test_rows_also_says_the_dataset_holds_a_test_split(state):
    from facetopt.domain.experiments import HoldoutTouch

    sha = issues_sha(state)
    record_validation_run(state, "Issues", sha, backend="local")  # an old run: test_facets unknown
    record_decision(state, "Issues", sha, "KEEP", backend="local")
    assert publish(state, None, "--facet", "Issues", "--dry-run").exit_code == 0
    with LocalStore(state / "store.duckdb") as store:
        touch = HoldoutTouch(
            dataset_project=PROJECT, dataset=DATASET, facet_name="issues", prompt_sha="0" * 64,
            experiment_id="exp-base", command="eval",
        )  # fmt: skip
        store.add_test_touches([touch])
    dry = publish(state, None, "--facet", "Issues", "--dry-run", "--json")
    assert dry.exit_code == 1
    assert json.loads(dry.stdout)["evidence"][0]["status"] == "not_on_test"
    assert json.loads(dry.stdout)["evidence"][0]["test_datasets"] == [DATASET]
    # other facets keep the validation rule: evaluated and kept there
    record_validation_run(state, "Sentiment", load_sha(state, "Sentiment"), backend="local")
    record_decision(state, "Sentiment", load_sha(state, "Sentiment"), "KEEP", backend="local")
    other = publish(state, None, "--facet", "Sentiment", "--dry-run", "--json")
    assert other.exit_code == 0 and json.loads(other.stdout)["evidence"][0]["status"] == "evaluated"


def load_sha(root: Path, facet: str) -> str:
    return load_prompt_file(root / "facet_definitions.yaml").facet(facet).prompt_sha256


def test_a_run_that_is_not_complete_is_no_evidence(state, fake):
    experiment_id = record_validation_run(state, "Issues", issues_sha(state))
    with LocalStore(state / "store.duckdb") as store:
        store.update_experiment(
            experiment_id, status="failed", status_cause="the command failed after the eval"
        )
    refused = publish(state, fake, "--facet", "Issues")
    assert refused.exit_code == 1, refused.output
    assert "never evaluated on a validation split" in refused.stderr
    assert not fake.requests_to("/insert-functions", "POST")
