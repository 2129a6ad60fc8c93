"""`kill -9` of facetopt mid-eval leaves no runner calling the model: the runner (bt and the Python
runner bt starts, or the SDK's runner) dies with it. Real processes; counted at the model fake."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facetopt.clients.braintrust.parent_watch import PARENT_ENV, alive
from tests.fakes.bt_standin import install_bt
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import DATASET, PROJECT, make_rows, path_without_bt, seed_local_state

pytestmark = pytest.mark.slow


def _runner_processes(facetopt_pid: int) -> list[int]:
    """Processes started for this facetopt (their environment names it as the eval's parent)."""
    marker = f"{PARENT_ENV}={facetopt_pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("runner", ["bt", "sdk"])
def test_sigkill_of_facetopt_mid_eval_stops_every_model_call(tmp_path, runner):
    root = seed_local_state(tmp_path / "state", make_rows(60))
    path = path_without_bt()
    if runner == "bt":
        path = f"{install_bt(tmp_path / 'bin').parent}{os.pathsep}{path}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_"))
    }
    env.update(PATH=path, FACET_OPTIMIZER_API_KEY="sk-model-kill-0123456789")
    with FakeOpenAIServer(latency=0.2) as model:
        args = ["eval", "--backend", "local", "--output-root", str(root), "--target-project", PROJECT,
                "--dataset", DATASET, "--api-base", model.url, "--judge-api-base", "simulated://",
                "--concurrency", "2", "--json"]  # fmt: skip
        facetopt = subprocess.Popen(
            [sys.executable, "-m", "facetopt.cli", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while model.count < 4 and time.monotonic() < deadline and facetopt.poll() is None:
                time.sleep(0.05)
            assert model.count >= 4, "the eval never reached the model"
            runners = _runner_processes(facetopt.pid)
            assert runners, "no runner process found"

            facetopt.send_signal(signal.SIGKILL)
            facetopt.wait(timeout=10)
            time.sleep(2.0)  # the watchdog checks twice a second; an answer in flight may land
            settled = model.count
            time.sleep(2.0)

            assert model.count == settled, f"{model.count - settled} model calls after facetopt died"
            assert not [pid for pid in runners if alive(pid)], "a runner outlived facetopt"
            assert model.count < 60 * 2  # it did stop early: the eval would call for every row
        finally:
            if facetopt.poll() is None:
                facetopt.kill()
            for pid in _runner_processes(facetopt.pid):
                os.kill(pid, signal.SIGKILL)
