"""Labelling through a loopback OpenAI-compatible server: faults, resumption, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import Failure, FakeOpenAIServer

pytestmark = pytest.mark.slow

SECRET = "sk-test-labeller-secret-123"
LIMITS = ["--positive-limit", "4", "--negative-limit", "4"]


def _env(server: FakeOpenAIServer) -> dict[str, str]:
    return {
        "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url,
        "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": SECRET,
    }


def test_429_and_500_are_retried_and_no_row_is_lost(tmp_path: Path) -> None:
    script = [Failure(429, retry_after="0")] * 3 + [Failure(500)] * 2
    with FakeOpenAIServer(script=script, api_key=SECRET) as server:
        result = run_cli(*create_args(tmp_path, *LIMITS, "--concurrency", "4", "--json"), env=_env(server))
        summary = json_out(result)
        assert server.failures_sent == 5
        label_requests = [r for r in server.requests if r.path.endswith("/chat/completions")]
    selected = summary["counts"]["selected_calls"]
    assert summary["failed_rows"] == []
    assert summary["counts"]["dataset_rows"] == selected
    assert summary["labels_paid"] + summary["labels_from_cache"] <= selected
    assert len(label_requests) == summary["label_requests_paid"] + 5
    assert summary["simulated_roles"] == []
    assert all(r.authorization == f"Bearer {SECRET}" for r in label_requests)


def test_a_row_that_keeps_failing_is_reported_not_fatal(tmp_path: Path) -> None:
    def fail_refunds(body: dict) -> Failure | None:
        return Failure(400, message="bad row") if "refund" in json.dumps(body).lower() else None

    with FakeOpenAIServer(fail_when=fail_refunds, api_key=SECRET) as server:
        summary = json_out(run_cli(*create_args(tmp_path, *LIMITS, "--json"), env=_env(server)))
    failed = summary["failed_rows"]
    assert failed, "the sample has refund traces"
    assert all("400" in f["reason"] or "bad row" in f["reason"] for f in failed)
    assert summary["counts"]["dataset_rows"] == summary["counts"]["selected_calls"] - len(failed)


def _artifact_text(root: Path) -> str:
    chunks = []
    for path in root.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def test_a_run_killed_mid_labelling_resumes_paying_only_for_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "state"
    args = create_args(root, *LIMITS, "--concurrency", "2", "--json")
    with FakeOpenAIServer(latency=0.25, api_key=SECRET) as server:
        env = {**os.environ, **_env(server)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "facetopt.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        journal = None
        while time.monotonic() < deadline:
            journals = list(root.glob("*/labels.jsonl"))
            if journals and len(journals[0].read_text().splitlines()) >= 4:
                journal = journals[0]
                break
            time.sleep(0.05)
        assert journal is not None, proc.stderr.read() if proc.poll() is not None else "no labels written"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "error: interrupted" in err and "Traceback" not in err
        paid_before = len(journal.read_text().splitlines())
        with LocalStore(root / "store.duckdb", read_only=True) as store:
            assert store.conn.execute("SELECT count(*) FROM label_cache").fetchone()[0] >= paid_before

        first_requests = server.count
        summary = json_out(run_cli(*args, env=_env(server)))
        second_requests = server.count - first_requests
    assert summary["labels_from_cache"] >= paid_before
    assert second_requests == summary["label_requests_paid"]
    assert summary["labels_paid"] + summary["labels_from_cache"] >= summary["counts"]["dataset_rows"] - 0
    assert SECRET not in out + err + _artifact_text(root)
