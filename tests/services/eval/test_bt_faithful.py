"""`facetopt eval` through `bt` as bt 0.15.1 really behaves (reference/braintrust-api.md, the bt
section): credentials resolved before every eval, the runner's stderr dropped under a parent
process, a user's `BT_EVAL_*` / `BRAINTRUST_PROFILE` variables, failures told from what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.clients.braintrust import connect, upload_rows
from facetopt.errors import FacetoptError
from facetopt.services.eval.results import ResultsWriter, read_experiment
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.bt_standin import install_bt
from tests.services.eval.helpers import (
    DATASET,
    PROJECT,
    isolated_env,
    make_rows,
    path_without_bt,
    seed_local_state,
)

pytestmark = pytest.mark.slow


def _bt(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST_", "BT_"))}
    return subprocess.run(
        [str(bin_dir / "bt"), *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def _kill_started_from(bin_dir: Path) -> None:
    """Stop the stand-in bt this test started (it runs in its own session), by process id."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and str(bin_dir / "bt") in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass


def test_the_stand_in_resolves_credentials_first_as_bt_does(tmp_path: Path):
    eval_file = tmp_path / "anything.py"
    eval_file.write_text("raise SystemExit('never imported')\n")
    several = tmp_path / "several"
    install_bt(several)
    refused = _bt(several, "eval", "--no-send-logs", "--jsonl", str(eval_file))
    assert refused.returncode == 4
    assert "profile selection required in non-interactive mode" in refused.stderr
    missing = tmp_path / "missing"
    install_bt(missing, profiles={"work": None})
    assert _bt(missing, "eval", "--no-send-logs", str(eval_file)).returncode == 2
    usage = _bt(several, "eval", "--bogus", str(eval_file), BRAINTRUST_API_KEY="k-1234")
    assert usage.returncode == 2 and "unexpected argument '--bogus'" in usage.stderr
    # any non-empty key passes, with no network call; the runner's stderr is dropped (not a terminal)
    failing = _bt(several, "eval", "--no-send-logs", str(eval_file), BRAINTRUST_API_KEY="placeholder")
    assert failing.returncode == 1
    assert "never imported" not in failing.stderr
    assert "error: eval runner exited with status 1" in failing.stderr


def test_a_local_eval_works_for_a_user_with_saved_profiles_no_key_and_bt_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """bt with two saved profiles and no key would stop (exit 4); a user's BT_EVAL_WATCH would keep
    it running for ever, BT_EVAL_FIRST would run one row, BRAINTRUST_PROFILE names no profile."""
    from facetopt.cli.main import app

    rows = make_rows(6)
    root = seed_local_state(tmp_path / "state", rows)
    bin_dir = tmp_path / "bin"
    install_bt(bin_dir)
    # the environment is clean (conftest); the command runs in this process, bt and its runner in theirs
    for name, value in {
        "PATH": f"{bin_dir}:{path_without_bt()}",
        "BT_EVAL_WATCH": "1",
        "BT_EVAL_FIRST": "1",
        "BT_EVAL_RUNNER": "/nonexistent/python",
        "BRAINTRUST_PROFILE": "nobody",
    }.items():
        monkeypatch.setenv(name, value)
    stuck = threading.Event()

    def stop_a_watching_bt() -> None:  # with BT_EVAL_WATCH bt never exits
        stuck.set()
        _kill_started_from(bin_dir)

    watchdog = threading.Timer(90, stop_a_watching_bt)
    watchdog.start()
    try:
        args = ["eval", "--output-root", str(root), "--backend", "local"]
        done = CliRunner().invoke(app, [*args, "--target-project", PROJECT, "--dataset", DATASET, "--json"])
    finally:
        watchdog.cancel()
    assert not stuck.is_set(), "facetopt eval never finished: a user's BT_EVAL_WATCH reached bt"
    assert done.exit_code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["runner"] == "bt" and summary["rows"] == len(rows) and summary["errors"] == 0


def test_refused_log_writes_are_reported_with_their_cause(tmp_path: Path):
    root = seed_local_state(tmp_path / "state", [])
    bin_dir = tmp_path / "bin"
    install_bt(bin_dir)
    with FakeBraintrust() as fake:
        env = {"BRAINTRUST_API_KEY": fake.api_key, "BRAINTRUST_APP_URL": fake.url}
        with isolated_env(tmp_path, f"{bin_dir}:{path_without_bt()}", **env):
            upload_rows(connect(fake.api_key, app_url=fake.url), PROJECT, DATASET, make_rows(4))
            fake.fail_logs3(times=None, status=413)  # not retried: the synchronous flush raises at once
            with pytest.raises(FacetoptError) as caught:
                run_eval(
                    load_settings(None, output_root=root, target_project=PROJECT, dataset=DATASET),
                    options=EvalOptions(),
                    progress=SilentProgress(),
                    announce=lambda m: None,
                    warn=lambda m: None,
                )
    error = caught.value
    assert "413" in error.message  # the refused write, named
    assert "exited with code" not in error.message  # the cause, not bt's exit status
    assert fake.api_key not in error.message + (error.hint or "")
    (run_dir,) = (root / "evals").iterdir()
    entries = [json.loads(line) for line in (run_dir / "eval_errors.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "log_write" for e in entries)
    assert fake.api_key not in (run_dir / "eval_errors.jsonl").read_text()


def test_the_experiment_id_comes_from_the_summary_entry_of_the_results_file(tmp_path: Path):
    results = tmp_path / "results.jsonl"
    writer = ResultsWriter(results)
    writer.experiment({"id": "from-span", "source": "span"})
    assert read_experiment(results) == {"id": "from-span", "source": "span"}
    writer.experiment({"id": "from-summary", "name": "x", "url": "u", "source": "summary"})
    writer.experiment({"id": "late-span", "source": "span"})
    assert read_experiment(results)["id"] == "from-summary"
    assert read_experiment(tmp_path / "missing.jsonl") is None
