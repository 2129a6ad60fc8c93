"""Commands against a misbehaving Braintrust (the loopback fake). `facetopt dataset upload` whose
log writes hang ends at the flush deadline with one error saying how to resume, shows that it
waits, and Ctrl-C ends it at once with exit 130 and no traceback, whatever the SDK's threads are
doing (facetopt in its own process, as a user runs it). `inspect` answered in the wrong shape
says so instead of showing nothing."""

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


@pytest.mark.parametrize(
    ("route", "reshape", "args", "error"),
    [
        (
            "/v1/experiment",
            lambda reply: {"items": reply["objects"]},
            ["experiments", "--target-project", "evals"],
            "error: Braintrust's reply to GET /v1/experiment (listing experiments) cannot be used: "
            "`objects` is missing",
        ),
        (
            "/btql",
            lambda reply: {**reply, "data": "x"},
            ["sql", "SELECT id FROM project_logs('evals') WHERE id = 'a'", "--target-project", "evals"],
            "error: Braintrust's reply to POST /btql (a SQL query) cannot be used: `data` is not",
        ),
    ],
)
def test_inspect_says_when_a_reply_cannot_be_read_instead_of_showing_nothing(
    fake, output_root, route, reshape, args, error
):
    from tests.fakes.braintrust_setup import braintrust_env

    project = fake.create_project("evals")
    fake.create_experiment(project["id"], "baseline")
    fake.reshape(route, reshape)

    shown = run_cli("inspect", *args, "--output-root", str(output_root), env=braintrust_env(fake))

    assert shown.exit_code == 1, shown.output
    assert error in shown.stderr
    assert "hint: Braintrust (or a proxy in front of it) answered in a shape" in shown.stderr
    assert "Traceback" not in shown.stderr and "unexpected" not in shown.stderr
