"""`facetopt eval` when Braintrust fails mid-run (loopback fake, the SDK's own runner, real HTTP):
a frozen log write ends at the flush deadline with every scored row kept, and `--resume` logs them
without a model call (its experiment created despite a dropped connection and a 503); a refused log
write names its HTTP status, the experiment is recorded as partial and a re-run supersedes it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from facetopt.clients.braintrust import connect, upload_rows
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import write_new_prompt_file
from facetopt.errors import BraintrustError
from facetopt.services.eval.results import read_results
from facetopt.services.eval.run import EvalOptions, run_eval, unfinished_namesake
from facetopt.services.eval.task import REPLAYED_KEY
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services.eval.helpers import DATASET, FACETS, PROJECT, make_rows, path_without_bt

ROWS = 6
NAME = "facet-optimizer-brain-facet-1"


@pytest.fixture
def braintrust(tmp_path, monkeypatch):
    root = tmp_path / "state"
    root.mkdir()
    write_new_prompt_file(root / "facet_definitions.yaml", FACETS)
    with FakeBraintrust() as fake:
        fake.freeze_limit_s = 10.0
        for name, value in {
            "BRAINTRUST_API_KEY": fake.api_key,
            "BRAINTRUST_APP_URL": fake.url,
            "BRAINTRUST_DISABLE_ATEXIT_FLUSH": "1",
            "FACETOPT_BT_RETRY_BACKOFF": "0",
            "FACETOPT_BT_RETRY_ATTEMPTS": "3",
            "PATH": path_without_bt(),
        }.items():
            monkeypatch.setenv(name, value)
        upload_rows(connect(fake.api_key, app_url=fake.url), PROJECT, DATASET, make_rows(ROWS))
        yield fake, root


def _eval(root, messages, **flags):
    resume = flags.pop("resume", None)
    return run_eval(
        load_settings(
            None,
            output_root=root,
            target_project=PROJECT,
            dataset=DATASET,
            api_base="simulated://",
            judge_api_base="simulated://",
            **flags,
        ),
        options=EvalOptions(resume=resume),
        progress=SilentProgress(),
        announce=messages.append,
        warn=messages.append,
    )


def _records(root):
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        return {
            r.experiment_id: (r, len(store.experiment_rows(r.experiment_id))) for r in store.experiments()
        }


def _cases(fake, experiment_id):
    rows = fake.experiment_rows(experiment_id)
    return [r for r in rows if (r.get("span_attributes") or {}).get("type") == "eval"]


def test_frozen_log_writes_end_at_the_deadline_and_resume_logs_the_kept_rows(braintrust):
    fake, root = braintrust
    fake.freeze("/logs3", method="POST")
    messages: list[str] = []
    with pytest.raises(BraintrustError) as caught:
        _eval(root, messages, flush_deadline=1.5)
    error = caught.value
    assert "flush deadline (1.5s" in error.message
    (experiment,) = fake._store.experiments.values()
    assert f"experiment {NAME!r} ({experiment['id']}) was created" in error.message
    assert f"holds 0 of {ROWS} rows" in error.message
    run_name = error.hint.split("--resume ")[1].split("`")[0]
    assert len(read_results(root / "evals" / run_name / "results.jsonl")) == ROWS
    record, kept = _records(root)[experiment["id"]]
    assert (record.status, record.logged_rows, kept) == ("partial", 0, ROWS)

    fake.clear_faults()
    # creating the new experiment (which the SDK never retries) meets a dropped connection and a 503
    fake.die("/v1/experiment", times=1, method="POST")
    fake.fail("/v1/experiment", 503, times=1, method="POST", retry_after=0)
    summary = _eval(root, messages, resume=run_name)
    assert len(fake.requests_to("/v1/experiment", "POST")) == 4  # 1 + 3 for the resumed run
    assert summary.supersedes == experiment["id"] and summary.experiment_id != experiment["id"]
    cases = _cases(fake, summary.experiment_id)
    assert len(cases) == ROWS and all(c["metadata"][REPLAYED_KEY] for c in cases)
    old, _ = _records(root)[experiment["id"]]
    assert old.superseded_by == summary.experiment_id
    assert any("supersedes" in m for m in messages)


def test_a_refused_log_write_names_the_status_and_the_rerun_supersedes_it(braintrust):
    fake, root = braintrust
    fake.fail("/logs3", 400, times=None, method="POST", message="payload rejected")
    with pytest.raises(BraintrustError) as caught:
        _eval(root, [])
    assert "HTTP 400" in caught.value.message and "payload rejected" in caught.value.message
    assert "Traceback" not in caught.value.message
    (partial,) = fake._store.experiments.values()
    record, kept = _records(root)[partial["id"]]
    assert record.status == "partial" and kept == ROWS

    settings = load_settings(output_root=root)
    rerun = SimpleNamespace(name=NAME, backend="braintrust", project=PROJECT, dataset=DATASET, split=None)
    assert unfinished_namesake(settings, rerun).experiment_id == partial["id"]
    assert unfinished_namesake(settings, SimpleNamespace(**{**vars(rerun), "name": "other"})) is None
    assert unfinished_namesake(settings, SimpleNamespace(**{**vars(rerun), "split": "train"})) is None
