"""The eval runner never outlives facetopt: SIGTERM and SIGHUP are forwarded like Ctrl-C, and the
runner's whole process group (bt and the Python runner it starts) is killed after the grace period,
also when facetopt fails for any other reason. Real processes, bounded by timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

_RUNNER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a runner deaf to Ctrl-C: only SIGKILL stops it
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"])
open(sys.argv[1], "w").write(str(child.pid))
print("ready", file=sys.stderr, flush=True)
time.sleep(60)
"""

_FACETOPT = """
import sys
from facetopt.clients.braintrust.bt_runner import RUNNER_BT, RunnerCommand, run_runner
pid_file, mode = sys.argv[1], sys.argv[2]
lines = []
def tick():
    if lines:
        print("runner started", flush=True)
        if mode == "crash":
            raise RuntimeError("facetopt failed")
command = RunnerCommand(RUNNER_BT, [sys.executable, "-c", RUNNER, pid_file])
outcome = run_runner(command, {"PATH": "/usr/bin:/bin"}, on_tick=tick, on_stderr=lines.append,
                     tick_seconds=0.05, interrupt_grace=0.5)
print("stopped by", outcome.stopped_by, flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state != "Z"


def _start(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    pid_file = tmp_path / "grandchild.pid"
    script = f"RUNNER = {_RUNNER!r}\n" + _FACETOPT
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(pid_file), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "runner started"
    return process, pid_file


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_runner_and_its_children(tmp_path, sig):
    process, pid_file = _start(tmp_path, "wait")
    grandchild = int(pid_file.read_text())
    process.send_signal(sig)
    out, _ = process.communicate(timeout=20)
    assert f"stopped by {signal.Signals(sig).name}" in out
    assert _gone_within(grandchild, 5), "the runner's child outlived facetopt"


def test_a_failure_in_facetopt_still_kills_the_runner_group(tmp_path):
    process, pid_file = _start(tmp_path, "crash")
    grandchild = int(pid_file.read_text())
    process.communicate(timeout=20)
    assert process.returncode != 0
    assert _gone_within(grandchild, 5), "the runner's child outlived a crashed facetopt"
