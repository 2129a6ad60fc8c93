"""An eval stopped with Ctrl-C keeps every model output and verdict it paid for; a re-run pays only for
what it lacks, a new trial is a new call, and --no-cache calls again. Counted at the loopback fakes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from facetopt.clients.local.store import LocalStore
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import (
    DATASET,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)

MODEL_KEY = "sk-model-resume-0123456789"
JUDGE_KEY = "sk-judge-resume-0123456789"
ROWS = 16


def _cached(root: Path) -> dict[str, int]:
    with LocalStore(root / "store.duckdb", read_only=True) as store:
        found = store.conn.execute("SELECT kind, count(*) FROM call_cache GROUP BY kind").fetchall()
    return dict(found)


def _interrupted_run(root: Path, model: FakeOpenAIServer, judge: FakeOpenAIServer, tmp: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_"))
    }
    env.update(
        PATH=path_without_bt(), FACET_OPTIMIZER_API_KEY=MODEL_KEY, FACET_OPTIMIZER_JUDGE_API_KEY=JUDGE_KEY
    )
    args = ["eval", "--backend", "local", "--output-root", str(root), "--target-project", PROJECT,
            "--dataset", DATASET, "--api-base", model.url, "--judge-api-base", judge.url,
            "--concurrency", "2", "--json"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "facetopt.cli", *args],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        results = list((root / "evals").glob("*/results.jsonl"))
        if results and len(results[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.6)  # the runner commits paid results in batches at most every half second
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]


def test_a_ctrl_c_eval_rerun_pays_only_for_what_it_lacks(tmp_path: Path) -> None:
    root = seed_local_state(tmp_path / "state", make_rows(ROWS))
    with (
        FakeOpenAIServer(api_key=MODEL_KEY, latency=0.5) as model,
        FakeOpenAIServer(api_key=JUDGE_KEY, latency=0.05) as judge,
    ):
        _interrupted_run(root, model, judge, tmp_path)
        paid = _cached(root)
        assert 3 <= paid.get("model", 0) < ROWS, paid  # interrupted part-way, results kept
        assert paid.get("judge", 0) >= 3
        model_before, judge_before = model.count, judge.count

        def again(**flags: object):
            with isolated_env(tmp_path, path_without_bt(), FACET_OPTIMIZER_API_KEY=MODEL_KEY,
                              FACET_OPTIMIZER_JUDGE_API_KEY=JUDGE_KEY):  # fmt: skip
                settings = load_settings(
                    None,
                    **{"output_root": root, "target_project": PROJECT, "dataset": DATASET,
                       "api_base": model.url, "judge_api_base": judge.url, "concurrency": 4, **flags},
                )  # fmt: skip
                return run_eval(
                    settings,
                    options=EvalOptions(no_send_logs=True),
                    progress=SilentProgress(),
                    announce=lambda m: None,
                    warn=lambda m: None,
                )

        # two trials: trial 0 resumes from the cache, trial 1 is a call of its own for every row
        resumed = again(trials=2)
        model_resumed, judge_resumed = model.count - model_before, judge.count - judge_before
        assert resumed.errors == 0 and resumed.rows == ROWS
        assert resumed.model_outputs_from_cache == paid["model"]
        assert model_resumed == 2 * ROWS - paid["model"]
        assert resumed.judge_verdicts_from_cache >= paid["judge"]
        assert judge_resumed == 2 * ROWS - resumed.judge_verdicts_from_cache

    summary = json.loads((Path(resumed.run_dir) / "summary.json").read_text())
    assert summary["model_outputs_from_cache"] == paid["model"]
    # what the parent's progress line shows: the runner's rate-limit policies
    policy = (Path(resumed.run_dir) / "results.policy.txt").read_text()
    assert "model: rate " in policy and "judge: rate " in policy and "429s 0" in policy


def test_no_cache_reads_nothing_but_still_keeps_fresh_results(tmp_path: Path) -> None:
    from facetopt.clients.llm.call_cache import CallCache, call_key
    from facetopt.clients.llm.endpoints import Endpoint
    from facetopt.settings import load_settings

    endpoint = Endpoint("facet_model", "brain-facet-1", "http://127.0.0.1:9/v1")
    key = call_key(endpoint, [{"role": "user", "content": "hi"}], {"max_tokens": 5}, trial=0)
    assert key != call_key(endpoint, [{"role": "user", "content": "hi"}], {"max_tokens": 5}, trial=1)
    path = tmp_path / "store.duckdb"
    LocalStore(path).close()
    writer = CallCache(path)
    writer.put(key, "model", "Positive - thanks", endpoint)
    writer.close()
    reader = CallCache(path)
    assert reader.load([key]) == 1 and reader.get(key) == "Positive - thanks" and reader.hits == 1
    fresh = CallCache(path, read=False)
    assert fresh.load([key]) == 0 and fresh.get(key) is None
    assert load_settings(None, use_cache=False).use_cache is False
