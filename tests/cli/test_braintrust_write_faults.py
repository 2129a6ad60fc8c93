"""`facetopt dataset upload` against a Braintrust whose log writes hang: the command ends at the
flush deadline with one error saying how to resume, shows that it waits, and Ctrl-C ends it at
once with exit 130 and no traceback, whatever the SDK's threads are doing. facetopt runs in its
own process, as a user runs it; the loopback fake holds every `/logs3` write unanswered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cli.dataset_helpers import SMALL, create_args, json_out, run_cli
from tests.fakes.braintrust_server import FakeBraintrust

pytestmark = pytest.mark.slow

DATASET = "Facet groundtruth"  # what create_args names


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        server.freeze_limit_s = 20.0
        yield server


@pytest.fixture
def run_dir(output_root: Path) -> Path:
    summary = json_out(run_cli(*create_args(output_root, *SMALL, "--backend", "local", "--json")))
    return Path(summary["run_dir"])


class Facetopt:
    """facetopt in its own process, its stderr read line by line as it comes."""

    def __init__(self, args: list[str], fake: FakeBraintrust, cwd: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FACET_OPTIMIZER_", "BRAINTRUST_"))}
        env.update(BRAINTRUST_API_KEY=fake.api_key, BRAINTRUST_APP_URL=fake.url)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "facetopt.cli", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return any(text in line for line in self.lines)

    def finish(self, seconds: float) -> tuple[int, str, float]:
        try:
            code = self.process.wait(timeout=seconds)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(timeout=5)
        return code, "".join(self.lines), time.monotonic() - self.started


def upload_args(run_dir: Path, deadline: float) -> list[str]:
    return ["dataset", "upload", "--run-dir", str(run_dir), "--backend", "braintrust",
            "--allow-simulated", "--flush-deadline", f"{deadline:g}"]  # fmt: skip


def test_a_hung_upload_ends_at_the_flush_deadline_with_how_to_resume(fake, run_dir, tmp_path):
    fake.freeze("/logs3", method="POST")

    facetopt = Facetopt(upload_args(run_dir, 4), fake, tmp_path)
    code, err, seconds = facetopt.finish(40)

    assert code == 1, err
    assert seconds < 15  # the deadline (4 s) plus start-up, not minutes of SDK retries
    assert (
        f"error: Braintrust did not take the rows written to dataset {DATASET!r} within the flush "
        "deadline (4s, --flush-deadline): none of the " in err
    )
    assert "run the same `facetopt dataset upload` command again" in err
    assert "waiting for Braintrust to take" in err  # progress while it waited
    assert "Traceback" not in err and "Sleeping for" not in err and "Exception ignored" not in err
    assert len(fake.requests_to("/logs3", "POST")) == 1  # abandoned: not sent again


def test_ctrl_c_ends_a_hung_upload_at_once(fake, run_dir, tmp_path):
    fake.freeze("/logs3", method="POST")

    facetopt = Facetopt(upload_args(run_dir, 300), fake, tmp_path)
    assert facetopt.wait_for("waiting for Braintrust to take", 30), "".join(facetopt.lines)
    interrupted = time.monotonic()
    facetopt.process.send_signal(signal.SIGINT)
    code, err, _ = facetopt.finish(20)

    assert time.monotonic() - interrupted < 5
    assert code == 130, err
    assert "error: interrupted" in err
    assert "Traceback" not in err and "Exception ignored" not in err
