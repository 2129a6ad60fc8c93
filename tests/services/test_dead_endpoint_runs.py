"""A dead model endpoint ends `dataset create` and `eval` with one error, and what was paid is kept.

In-process runs shorten the dead-endpoint window (rate_limit.DEAD_AFTER_SECONDS) and the backoff;
the eval runner is its own process, so its tests use refusals that are not retried (4xx), which
the default rule ends after DEAD_AFTER_REFUSALS answers.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from facetopt.clients.llm import rate_limit, transport
from facetopt.clients.local.store import LocalStore
from facetopt.errors import ModelError
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import Failure, FakeOpenAIServer
from tests.services.eval.helpers import (
    DATASET,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)

pytestmark = pytest.mark.slow

SECRET = "sk-test-dead-endpoint-5150"
LIMITS = ["--positive-limit", "6", "--negative-limit", "6"]


@pytest.fixture
def short_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limit, "DEAD_AFTER_SECONDS", 1.0)
    monkeypatch.setattr(transport, "_backoff", lambda attempt: 0.05)


def _labeller_env(server: FakeOpenAIServer) -> dict[str, str]:
    return {
        "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url,
        "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": SECRET,
    }


@pytest.mark.usefixtures("short_clock")
def test_a_labeller_answering_500_to_everything_ends_dataset_create(tmp_path: Path) -> None:
    dead = Failure(500, message=f"no deployment named gpt-5.4 (key {SECRET})")
    with FakeOpenAIServer(fail_when=lambda body: dead, api_key=SECRET) as server:
        start = time.perf_counter()
        result = run_cli(*create_args(tmp_path, *LIMITS, "--concurrency", "8"), env=_labeller_env(server))
        seconds = time.perf_counter() - start
    assert result.exit_code == 1
    err = result.stderr
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "labeller endpoint is refusing every call" in lines[0] and server.url in lines[0]
    assert "HTTP 500: no deployment named gpt-5.4" in lines[0]
    assert SECRET not in err + result.stdout and "Traceback" not in err
    assert "hint:" in err and "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE" in err
    assert seconds < 20


@pytest.mark.usefixtures("short_clock")
def test_labels_paid_before_the_endpoint_died_are_kept_and_reused(tmp_path: Path) -> None:
    calls, lock, outage = itertools.count(), threading.Lock(), threading.Event()

    def dies_after_five(body: dict) -> Failure | None:
        with lock:
            if next(calls) == 5:
                outage.set()
        return Failure(502, message="bad gateway") if outage.is_set() else None

    root = tmp_path / "state"
    args = create_args(root, *LIMITS, "--concurrency", "1")
    with FakeOpenAIServer(fail_when=dies_after_five, api_key=SECRET) as server:
        result = run_cli(*args, env=_labeller_env(server))
        assert result.exit_code == 1 and "HTTP 502: bad gateway" in result.stderr
        with LocalStore(root / "store.duckdb", read_only=True) as store:
            cached = store.conn.execute("SELECT count(*) FROM label_cache").fetchone()[0]
        assert cached == 5
        outage.clear()  # the endpoint is back: the next run pays only for what it lacks
        before = server.count
        summary = json_out(run_cli(*args, "--json", env=_labeller_env(server)))
        resent = server.count - before
    assert summary["labels_from_cache"] >= 5
    assert resent == summary["label_requests_paid"]


def _eval(tmp: Path, model_server: FakeOpenAIServer, judge_server: FakeOpenAIServer, rows: int):
    root = seed_local_state(tmp / "state", make_rows(rows))
    env = {"FACET_OPTIMIZER_API_KEY": SECRET, "FACET_OPTIMIZER_JUDGE_API_KEY": SECRET}
    with isolated_env(tmp, path_without_bt(), **env):
        settings = load_settings(
            None,
            output_root=root,
            target_project=PROJECT,
            dataset=DATASET,
            api_base=model_server.url,
            judge_api_base=judge_server.url,
            concurrency=2,
            backend="local",
        )
        return run_eval(
            settings,
            options=EvalOptions(no_send_logs=True),
            progress=SilentProgress(),
            announce=lambda _: None,
            warn=lambda _: None,
        )


def test_a_facet_model_refusing_every_call_fails_the_eval_with_its_status(tmp_path: Path) -> None:
    gone = Failure(404, message="The model `brain-facet-1` does not exist")
    with (
        FakeOpenAIServer(fail_when=lambda body: gone, api_key=SECRET) as model_server,
        FakeOpenAIServer(api_key=SECRET) as judge_server,
    ):
        with pytest.raises(ModelError) as caught:
            _eval(tmp_path, model_server, judge_server, rows=40)
        sent = model_server.count
    message = caught.value.message
    assert "facet model endpoint is refusing every call" in message and model_server.url in message
    assert "HTTP 404: The model `brain-facet-1` does not exist" in message
    assert sent <= rate_limit.DEAD_AFTER_REFUSALS + 2  # the other rows were not sent


def test_a_judge_refusing_every_call_fails_the_eval_with_its_status(tmp_path: Path) -> None:
    denied = Failure(401, message="Incorrect API key provided")
    with (
        FakeOpenAIServer(api_key=SECRET) as model_server,
        FakeOpenAIServer(fail_when=lambda body: denied, api_key=SECRET) as judge_server,
    ):
        with pytest.raises(ModelError) as caught:
            _eval(tmp_path, model_server, judge_server, rows=40)
    message = caught.value.message
    assert "judge endpoint is refusing every call" in message and judge_server.url in message
    assert "HTTP 401: Incorrect API key provided" in message and SECRET not in message
