"""`facetopt publish` never misleads: no crash on any evidence status (a test split included), a
function once inserted is reported as published whatever fails after, a test comparison that is not
KEEP blocks like one on validation, an evaluation alone is no evidence, the dry run reads the
evidence where it lives and exits as the real run, and every refusal's hint names a step that can
succeed (or says only fresh data or --force can). Both backends: local and the Braintrust fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import write_new_prompt_file
from facetopt.domain.experiments import EvalRow, ExperimentRecord, HoldoutTouch
from tests.cli.test_publish_cli import issues_sha, publish, record_decision, record_validation_run
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services.eval.helpers import DATASET, FACETS, PROJECT
from tests.services.experiments.test_inspect_braintrust import eval_spans


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    root.mkdir()
    write_new_prompt_file(root / "facet_definitions.yaml", FACETS)
    return root


@pytest.fixture(params=["local", "braintrust"])
def where(request, state: Path):
    """(fake or None, backend name): every test below runs on both backends."""
    if request.param == "local":
        yield None, "local"
        return
    with FakeBraintrust() as server:
        yield server, "braintrust"


def both(root: Path, fake: FakeBraintrust | None, backend: str, *args: str):
    return publish(root, fake, "--backend", backend, "--facet", "Issues", *args)


def touch_test(root: Path, sha: str, experiment: str = "exp-x") -> None:
    with LocalStore(root / "store.duckdb") as store:
        store.add_test_touches(
            [
                HoldoutTouch(
                    dataset_project=PROJECT,
                    dataset=DATASET,
                    facet_name="Issues",
                    prompt_sha=sha,
                    experiment_id=experiment,
                    command="eval",
                )  # fmt: skip
            ]
        )


def test_force_with_a_test_split_publishes_and_reports_it_without_a_crash(state, where):
    fake, backend = where
    sha = issues_sha(state)
    record_validation_run(state, "Issues", sha, backend=backend, test_facets=["Issues"])
    result = both(state, fake, backend, "--force")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert "not_on_test" in result.stdout and ("published" in result.stdout or "written" in result.stdout)
    as_json = json.loads(both(state, fake, backend, "--force", "--json").stdout)
    assert as_json["forced"] is True and as_json["evidence"][0]["status"] == "not_on_test"
    if fake is not None:
        assert as_json["functions"][0]["status"] == "published"
        assert as_json["functions"][0]["function_id"] == fake.functions()[0]["id"]


@pytest.mark.parametrize("verdict", ["INCONCLUSIVE", "REJECT"])
def test_a_test_comparison_that_is_not_keep_blocks_like_one_on_validation(state, where, verdict):
    fake, backend = where
    sha = issues_sha(state)
    record_validation_run(state, "Issues", sha, backend=backend, test_facets=["Issues"])
    record_decision(state, "Issues", sha, "KEEP", backend=backend)  # validation said KEEP
    record_validation_run(state, "Issues", sha, backend=backend, split="test")
    record_decision(state, "Issues", sha, verdict, split="test", backend=backend)
    dry = both(state, fake, backend, "--dry-run", "--json")
    real = both(state, fake, backend)
    assert dry.exit_code == real.exit_code == 1
    report = json.loads(dry.stdout)
    assert report["outcome"] == "would_refuse" and "on test" in report["reason"]
    assert f"said {verdict}" in report["reason"] and f"error: {report['reason']}" in real.stderr
    # the test split gave its verdict: the hint does not send the user back to test
    assert "only fresh test data or a person's `facetopt publish --force`" in real.stderr
    assert "eval --split test" not in real.stderr
    if fake is not None:
        assert not fake.requests_to("/insert-functions", "POST")


def test_an_evaluated_prompt_never_compared_is_no_evidence(state, where):
    fake, backend = where
    sha = issues_sha(state)
    base = record_validation_run(state, "Issues", "0" * 64, backend=backend)
    mine = record_validation_run(state, "Issues", sha, backend=backend)
    dry = both(state, fake, backend, "--dry-run", "--json")
    real = both(state, fake, backend)
    assert dry.exit_code == real.exit_code == 1
    assert json.loads(dry.stdout)["evidence"][0]["status"] == "never_compared"
    assert "an evaluation alone is no evidence" in real.stderr
    # the hint names the comparison that can settle it: this prompt's run against the other version's
    assert f"facetopt compare {base} {mine} --split validation --facet Issues" in real.stderr
    record_decision(state, "Issues", sha, "KEEP", backend=backend)
    dry = both(state, fake, backend, "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["outcome"] == "would_publish"
    real = both(state, fake, backend, "--json")
    assert real.exit_code == 0 and json.loads(real.stdout)["outcome"] in ("published", "written")


def test_with_the_holdout_used_up_the_hint_says_only_fresh_data_or_force(state, where):
    fake, backend = where
    sha = issues_sha(state)
    record_validation_run(state, "Issues", sha, backend=backend, test_facets=["Issues"])
    record_decision(state, "Issues", sha, "KEEP", backend=backend)
    touch_test(state, "1" * 64)
    allowed = both(state, fake, backend)
    assert allowed.exit_code == 1 and "`facetopt eval --split test --facet Issues`" in allowed.stderr
    touch_test(state, "2" * 64)  # two other versions read test: a third is refused by the holdout rule
    refused = both(state, fake, backend)
    assert refused.exit_code == 1 and "eval --split test" not in refused.stderr
    assert "only fresh test data (a new dataset with a test split) or a person's" in refused.stderr


def test_a_function_inserted_is_reported_as_published_when_recording_it_fails(state, monkeypatch):
    with FakeBraintrust() as fake:
        sha = issues_sha(state)
        record_validation_run(state, "Issues", sha)
        record_decision(state, "Issues", sha, "KEEP")

        def broken(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(LocalStore, "record_publication", broken)
        result = publish(state, fake, "--facet", "Issues", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["outcome"] == "published" and report["functions"][0]["status"] == "published"
        assert report["functions"][0]["function_id"] == fake.functions()[0]["id"]
        assert "published, but not recorded in the local store" in result.stderr


def test_a_lost_insert_reply_is_published_when_the_functions_read_back_as_sent(state, monkeypatch):
    """Braintrust stored the function but its reply was lost: what reads back decides, so the
    command says published (with a warning), not that it failed while production changed."""
    from facetopt.clients.braintrust import functions
    from facetopt.errors import BraintrustError

    real_insert = functions.insert_functions

    def reply_lost(conn, definitions):
        real_insert(conn, definitions)
        raise BraintrustError("timed out reading Braintrust's reply to publishing facet functions")

    monkeypatch.setattr(functions, "insert_functions", reply_lost)
    with FakeBraintrust() as fake:
        sha = issues_sha(state)
        record_validation_run(state, "Issues", sha)
        record_decision(state, "Issues", sha, "KEEP")
        result = publish(state, fake, "--facet", "Issues", "--json")
        assert result.exit_code == 0, result.output
        (function,) = json.loads(result.stdout)["functions"]
        assert function["status"] == "published" and function["function_id"] == fake.functions()[0]["id"]
        assert "the insert's reply was lost" in result.stderr
    with LocalStore(state / "store.duckdb", read_only=True) as store:
        assert [p["slug"] for p in store.publications(sha)] == ["facet-optimizer-issues"]


def test_an_insert_that_fails_with_nothing_stored_is_an_error(state):
    with FakeBraintrust() as fake:
        sha = issues_sha(state)
        record_validation_run(state, "Issues", sha)
        record_decision(state, "Issues", sha, "KEEP")
        fake.die("/insert-functions", times=None, method="POST")
        refused = publish(state, fake, "--facet", "Issues")
        assert refused.exit_code == 1 and not fake.functions()  # nothing stored: the error stands


def test_the_dry_run_reads_evidence_that_lives_only_on_braintrust(state):
    """The evaluation's rows are on Braintrust only (not in the local store): the old dry run read
    nothing and said "never evaluated"; it now reads them, as the real run does."""
    with FakeBraintrust() as fake:
        sha = issues_sha(state)
        project = fake.create_project("Facet Optimizer")
        experiment = fake.create_experiment(project["id"], "candidate")
        rows = [
            EvalRow(
                id=f"row-{i}:Issues",
                facet_name="Issues",
                split="validation",
                output="NONE",
                expected="NONE",
                scores={"binary_decision_match": 1.0},
                metadata={"split": "validation", "ground_truth_model": "gpt-5.4", "facet_name": "Issues"},
            )  # fmt: skip
            for i in range(3)
        ]
        fake.add_experiment_spans(experiment["id"], eval_spans(rows))
        record = ExperimentRecord(
            experiment_id=experiment["id"], experiment_name="candidate", backend="braintrust",
            model="brain-facet-1", dataset=DATASET, dataset_project=PROJECT, split="validation",
            prompt_hashes={"Issues": sha}, row_count=3, created=datetime.now(UTC).isoformat(),
        )  # fmt: skip
        record.stored_locally = False
        with LocalStore(state / "store.duckdb") as store:
            store.add_experiment(record, None)
        record_decision(state, "Issues", sha, "KEEP")
        dry = publish(state, fake, "--facet", "Issues", "--dry-run", "--json")
        assert dry.exit_code == 0, dry.output
        report = json.loads(dry.stdout)
        assert report["outcome"] == "would_publish" and report["evidence"][0]["status"] == "evaluated"
        assert report["evidence"][0]["validation_experiments"] == [experiment["id"]]
        assert fake.requests_to("/btql", "POST"), "the evidence was not read from Braintrust"
        assert not fake.requests_to("/insert-functions") and not fake.requests_to("/api/project/register")
        real = publish(state, fake, "--facet", "Issues", "--json")
        assert real.exit_code == 0 and json.loads(real.stdout)["outcome"] == "published"
