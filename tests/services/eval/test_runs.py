"""`facetopt eval` end to end against loopback fakes: the stand-in `bt`, the SDK runner, real HTTP.

Each run starts a runner subprocess (2-4 s), so every run is a module-scoped fixture shared by
several assertions.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from facetopt.services.eval.run import EvalOptions, EvalSummary, run_eval
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.bt_standin import bt_calls, install_bt
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import (
    DATASET,
    FACETS,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)

pytestmark = pytest.mark.slow

MODEL_KEY = "sk-model-key-0123456789abcdef"
JUDGE_KEY = "sk-judge-key-fedcba9876543210"


@dataclass
class Run:
    summary: EvalSummary
    root: Path
    messages: list[str]
    model_server: FakeOpenAIServer
    judge_server: FakeOpenAIServer
    bin_dir: Path | None = None


def _run(tmp: Path, *, rows: int, flags: dict, with_bt: bool, options: EvalOptions | None = None) -> Run:
    root = seed_local_state(tmp / "state", make_rows(rows))
    bin_dir = tmp / "bin" if with_bt else None
    path = path_without_bt()
    if bin_dir is not None:
        install_bt(bin_dir)
        path = f"{bin_dir}:{path}"
    messages: list[str] = []
    env = {"FACET_OPTIMIZER_API_KEY": MODEL_KEY, "FACET_OPTIMIZER_JUDGE_API_KEY": JUDGE_KEY}
    with (
        FakeOpenAIServer(api_key=MODEL_KEY) as model_server,
        FakeOpenAIServer(api_key=JUDGE_KEY) as judge_server,
        isolated_env(tmp, path, **env),
    ):
        summary = run_eval(
            load_settings(
                None,
                **{
                    "output_root": root,
                    "target_project": PROJECT,
                    "dataset": DATASET,
                    "api_base": model_server.url,
                    "judge_api_base": judge_server.url,
                    "concurrency": 4,
                    **flags,
                },
            ),
            options=options or EvalOptions(),
            progress=SilentProgress(),
            announce=messages.append,
            warn=messages.append,
        )
    return Run(summary, root, messages, model_server, judge_server, bin_dir)


@pytest.fixture(scope="module")
def bt_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Through the stand-in bt: brain-facet-1 (prompt in extra_body), judge gpt-5.4 (Responses API)."""
    return _run(tmp_path_factory.mktemp("bt"), rows=10, flags={"judge_model": "gpt-5.4"}, with_bt=True)


@pytest.fixture(scope="module")
def sdk_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Through the SDK runner: a generic model (prompt appended), a chat-path judge, two trials."""
    return _run(
        tmp_path_factory.mktemp("sdk"),
        rows=12,
        flags={"model": "gpt-4o-mini", "judge_model": "gpt-4o-mini", "trials": 2, "split": "validation"},
        with_bt=False,
        options=EvalOptions(experiment_name="appended-prompt"),
    )


def test_bt_gets_the_packaged_eval_file_this_python_and_no_key_on_its_command_line(bt_run):
    (call,) = bt_calls(bt_run.bin_dir)
    packaged = Path(importlib.util.find_spec("facetopt.eval_facet").origin).resolve()
    assert call["argv"][:5] == ["eval", "--jsonl", "--no-send-logs", "--runner", sys.executable]
    assert Path(call["argv"][5]).resolve() == packaged
    assert call["python"] == sys.executable
    assert call["key_in_argv"] is False
    assert {"FACETOPT_EVAL_CONFIG", "FACETOPT_EVAL_RESULTS", "FACETOPT_EVAL_MODEL_API_KEY"} <= set(
        call["env_names"]
    )
    # local backend: bt resolves credentials anyway, so it gets a placeholder (the runner never logs in)
    assert "BRAINTRUST_API_KEY" in call["env_names"]
    assert bt_run.summary.runner == "bt"
    assert not any("bt not found" in m for m in bt_run.messages)


def test_brain_facet_models_get_the_facet_prompt_in_extra_body(bt_run):
    chats = [r for r in bt_run.model_server.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 10
    prompts = {f.prompt_text for f in FACETS}
    for request in chats:
        (group,) = request.body["suffix_messages"]
        assert group[0]["content"] in prompts
        assert not any(m["content"] in prompts for m in request.body["messages"])
        assert request.body["max_tokens"] == 20000


def test_factuality_uses_the_responses_api_for_gpt5_judges_and_every_row_is_scored(bt_run):
    paths = {r.path for r in bt_run.judge_server.requests}
    assert paths == {"/v1/responses"}
    assert all(r.body["tools"][0]["name"] == "select_choice" for r in bt_run.judge_server.requests)
    overall = bt_run.summary.metrics[-1]
    assert overall.facet_name == "overall" and overall.n == 10 and overall.errored == 0
    assert overall.factuality is not None
    with LocalStore(bt_run.root / "store.duckdb", read_only=True) as store:
        rows = store.experiment_rows(bt_run.summary.experiment_id)
    assert len(rows) == 10 and all(r.scores["Factuality"] is not None for r in rows)


def test_no_key_reaches_output_or_artifacts(bt_run):
    texts = [json.dumps(bt_run.messages), bt_run.summary.model_dump_json()]
    for path in Path(bt_run.summary.run_dir).iterdir():
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    texts.append((bt_run.root / "store.duckdb").read_bytes().decode("latin-1"))
    for text in texts:
        assert MODEL_KEY not in text and JUDGE_KEY not in text


def test_other_models_get_the_facet_prompt_appended_and_the_judge_uses_chat(sdk_run):
    assert sdk_run.summary.runner == "braintrust-sdk"
    assert any("bt not found: using the braintrust SDK's eval runner" in m for m in sdk_run.messages)
    chats = [r for r in sdk_run.model_server.requests if r.path.endswith("/chat/completions")]
    prompts = {f.prompt_text for f in FACETS}
    assert chats and all("suffix_messages" not in r.body for r in chats)
    assert all(r.body["messages"][-1]["content"] in prompts for r in chats)
    judge_paths = {r.path for r in sdk_run.judge_server.requests}
    assert judge_paths == {"/v1/chat/completions"}
    assert all(
        r.body["tool_choice"]["function"]["name"] == "select_choice" for r in sdk_run.judge_server.requests
    )


def test_trials_run_each_row_twice_and_the_row_keeps_the_mean(sdk_run):
    validation = [r for r in make_rows(12) if r.split == "validation"]
    assert sdk_run.summary.rows == len(validation) == 4 and sdk_run.summary.trials == 2
    assert sdk_run.model_server.count == 8
    with LocalStore(sdk_run.root / "store.duckdb", read_only=True) as store:
        rows = store.experiment_rows(sdk_run.summary.experiment_id)
        (record,) = [e for e in store.experiments() if e.experiment_id == sdk_run.summary.experiment_id]
    assert all(len(r.metadata["trials"]) == 2 for r in rows)
    assert all(r.scores["Factuality"] is not None for r in rows)
    assert record.experiment_name == "appended-prompt" and record.split == "validation"
    assert record.filters == {"split": ["validation"]} and record.runner == "braintrust-sdk"
