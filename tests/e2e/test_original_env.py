"""A user of the original facet-optimizer scripts keeps their `.env`: a copy of every name the
original reads (tests/fixtures/original.env), endpoints filled in with loopback fakes, drives
`dataset create`, `bootstrap` and `eval` (through the stand-in `bt`) with no flag but --json, and
every setting is checked where it takes effect. The commands run in this process (the CLI's start-up
is not what is tested); the eval runner is bt's own process, as for a user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt import settings_names
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.braintrust_setup import sample_spans
from tests.fakes.bt_standin import bt_calls, install_bt
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import path_without_bt

FIXTURE = Path(__file__).parents[1] / "fixtures" / "original.env"
KEY = "sk-golden-braintrust-key-0001"
LABEL_KEY = "sk-golden-label-key-0002"
JUDGE_KEY = "sk-golden-judge-key-0003"
SOURCE, TARGET, EVALS, DATASET = "golden-source", "Golden Target", "Golden Evals", "Golden groundtruth"
pytestmark = pytest.mark.e2e


def fill(template: str, values: dict[str, str]) -> str:
    """The fixture with `values` put in place of its lines' values (every other line kept as is)."""
    lines = []
    for line in template.splitlines():
        name, sep, _ = line.partition("=")
        lines.append(f"{name}={values[name]}" if sep and name in values else line)
    missing = set(values) - {line.partition("=")[0] for line in template.splitlines()}
    assert not missing, f"not in the original's names: {missing}"
    return "\n".join(lines) + "\n"


def facetopt(*args: str) -> tuple[dict, str]:
    """`facetopt <args> --json` in the test's folder (its .env) and clean environment."""
    from facetopt.cli.main import app

    done = CliRunner().invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_the_original_env_drives_dataset_create_and_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    template = FIXTURE.read_text(encoding="utf-8")
    bin_dir = tmp_path / "bin"
    install_bt(bin_dir)
    # the environment is clean (conftest) and the folder is tmp_path: the .env written there is all
    monkeypatch.setenv("PATH", f"{bin_dir}:{path_without_bt()}")
    monkeypatch.setattr(settings_names, "_WARNED", set())  # each unknown name is warned once a process
    with (
        FakeBraintrust(keys={KEY: ["other-org", "golden-org"]}) as fake,
        FakeOpenAIServer(api_key=LABEL_KEY, latency=0.05) as labeller,
        FakeOpenAIServer(api_key=KEY, latency=0.05) as model,
        FakeOpenAIServer(api_key=JUDGE_KEY) as judge,
    ):
        source_id = fake.create_project(SOURCE, org="golden-org")["id"]
        fake.add_spans(source_id, sample_spans(tmp_path / "sample"))
        values = {
            "BRAINTRUST_API_KEY": KEY,
            "BRAINTRUST_APP_URL": fake.url,
            "BRAINTRUST_ORG_NAME": "golden-org",  # the key's first org is other-org
            "BRAINTRUST_PROXY_API_BASE": model.url,  # the facet model's base (FACET_OPTIMIZER_API_BASE=)
            "FACET_OPTIMIZER_SOURCE_PROJECT": SOURCE,
            "FACET_OPTIMIZER_TARGET_PROJECT": "",  # FACET_OPTIMIZER_PROJECT is the fallback
            "FACET_OPTIMIZER_PROJECT": TARGET,
            "FACET_OPTIMIZER_DATASET": DATASET,
            "FACET_OPTIMIZER_SOURCE_MODEL": "brain-facet-1,brain-facet-latest",
            "FACET_OPTIMIZER_GROUND_TRUTH_MODEL": "gpt-golden-labeller",
            "FACET_OPTIMIZER_LABEL_API_BASE": labeller.url,
            "FACET_OPTIMIZER_LABEL_API_KEY": LABEL_KEY,
            "FACET_OPTIMIZER_JUDGE_API_BASE": judge.url,
            "FACET_OPTIMIZER_JUDGE_API_KEY": JUDGE_KEY,
            "FACET_OPTIMIZER_POSITIVE_LIMIT": "3",
            "FACET_OPTIMIZER_NEGATIVE_LIMIT": "2",
            "FACET_OPTIMIZER_CONCURRENCY": "2",
            "FACET_OPTIMIZER_VALIDATION_FRACTION": "0.5",
            "FACET_OPTIMIZER_EXTRA_WHERE_SQL": "span_attributes.type = 'llm'",
            "FACET_OPTIMIZER_OUTPUT_ROOT": "state",
            "FACET_OPTIMIZER_EVAL_PROJECT": EVALS,
            "FACET_OPTIMIZER_DATASET_PROJECT": TARGET,
            "FACET_OPTIMIZER_EXPERIMENT_PREFIX": "golden",
            "FACET_OPTIMIZER_PROMPT": "state/facet_definitions.yaml",
            "FACET_OPTIMIZER_MAX_TOKENS": "321",
            "FACET_OPTIMIZER_REQUEST_TIMEOUT": "45",
            "FACET_OPTIMIZER_MAX_CONCURRENCY": "2",
            "FACET_OPTIMIZER_TRIAL_COUNT": "2",
            "FACET_OPTIMIZER_FACET_FILTER": "TASK",  # lower-cased, as in the original
            "FACET_OPTIMIZER_SPLIT": "validation",
        }
        (tmp_path / ".env").write_text(fill(template, values), encoding="utf-8")

        # -- dataset create, from the .env alone -------------------------------------------------------
        created, create_err = facetopt("dataset", "create")
        assert "unknown setting" not in create_err  # the publishing names are known names too
        assert Path(created["run_dir"]).resolve().parent == (tmp_path / "state").resolve()
        assert created["backend"] == "braintrust" and created["target_project"] == TARGET
        assert created["dataset"] == DATASET and created["ground_truth_model"] == "gpt-golden-labeller"
        assert created["ground_truth_endpoint"] == labeller.url
        labelled = [r for r in labeller.requests if r.path.endswith(("/chat/completions", "/responses"))]
        assert labelled and {r.body["model"] for r in labelled} == {"gpt-golden-labeller"}
        assert {r.authorization for r in labelled} == {f"Bearer {LABEL_KEY}"}
        assert labeller.max_in_flight == 2  # FACET_OPTIMIZER_CONCURRENCY is the labelling concurrency
        assert not model.requests and not judge.requests
        sql = (Path(created["run_dir"]) / "query.sql").read_text()
        assert "span_attributes.type = 'llm'" in sql and "'brain-facet-1'" in sql
        rows = [
            json.loads(x) for x in (Path(created["run_dir"]) / "dataset_rows.jsonl").read_text().splitlines()
        ]
        assert {r["metadata"]["source_org"] for r in rows} == {"golden-org"}
        for facet in {r["input"]["facet_name"] for r in rows}:
            mine = [r for r in rows if r["input"]["facet_name"] == facet]
            assert len(mine) <= 5
            validation = sum(r["metadata"]["split"] == "validation" for r in mine)
            assert abs(validation - len(mine) / 2) <= 1  # FACET_OPTIMIZER_VALIDATION_FRACTION=0.5
        target = fake.create_project(TARGET, org="golden-org")
        stored = fake.dataset_rows(fake.find_dataset(target["id"], DATASET)["id"])
        assert {r["id"] for r in stored} == {r["id"] for r in rows}

        # -- bootstrap, then eval through bt, from the .env alone --------------------------------------
        facetopt("bootstrap")
        assert (tmp_path / "state" / "facet_definitions.yaml").exists()
        chosen = sorted(
            r["id"]
            for r in rows
            if r["input"]["facet_name"].lower() == "task" and r["metadata"]["split"] == "validation"
        )
        assert chosen, "the sample gives the task facet validation rows"
        summary, eval_err = facetopt("eval")
    assert "unknown setting" not in eval_err
    assert summary["runner"] == "bt" and summary["backend"] == "braintrust"
    assert summary["project"] == EVALS and summary["dataset_project"] == TARGET
    assert summary["experiment_name"] == "golden-brain-facet-1" and summary["trials"] == 2
    assert summary["rows"] == len(chosen) and summary["errors"] == 0
    assert {m["facet_name"] for m in summary["metrics"]} <= {"Task", "task", "overall"}
    asked = [r for r in model.requests if r.path.endswith("/chat/completions")]
    assert len(asked) == 2 * len(chosen)  # FACET_OPTIMIZER_TRIAL_COUNT
    assert {r.body["max_tokens"] for r in asked} == {321} and {r.body["model"] for r in asked} == {
        "brain-facet-1"
    }
    assert {r.authorization for r in asked} == {f"Bearer {KEY}"}  # FACET_OPTIMIZER_API_KEY= falls back
    assert model.max_in_flight <= 2  # FACET_OPTIMIZER_MAX_CONCURRENCY
    assert judge.requests and {r.authorization for r in judge.requests} == {f"Bearer {JUDGE_KEY}"}
    (created_experiment,) = fake.requests_to("/v1/experiment", "POST")
    evals_project = fake.create_project(EVALS, org="golden-org")
    assert created_experiment.body["project_id"] == evals_project["id"]
    metadata = created_experiment.body["metadata"]
    assert (
        metadata["trial_count"] == 2 and metadata["max_tokens"] == 321 and metadata["request_timeout"] == 45
    )
    assert metadata["facet_filter"] == ["task"] and metadata["split_filter"] == ["validation"]
    assert metadata["dataset"] == DATASET and metadata["dataset_project"] == TARGET
    assert metadata["factuality_model"] == "gpt-5.4" and metadata["max_rows"] is None
    (call,) = bt_calls(bin_dir)
    assert "--no-send-logs" not in call["argv"] and call["key_in_argv"] is False
