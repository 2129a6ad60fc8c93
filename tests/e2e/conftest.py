"""The end-to-end tests' shared state: one offline demo run for the whole session."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os

import pytest

from tests.e2e.helpers import STRAY_USER_SETTINGS, CommandResult, DemoRun, facetopt_env, run_facetopt


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`facetopt demo --json` once for the session (about 15 s): every e2e test reads its artifacts.

    Under xdist workers (`make test`) the first worker to ask runs it, under a lock, in the folder all
    workers share; the others wait and read the same run."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    cwd = shared / "demo"
    output_root = cwd / "demo-root"
    recorded = cwd / "demo-result.json"
    with (shared / "demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not recorded.exists():
            cwd.mkdir(exist_ok=True)
            result = run_facetopt(
                ["demo", "--json", "--output-root", str(output_root)],
                cwd,
                facetopt_env(**STRAY_USER_SETTINGS),
            )
            assert result.returncode == 0, result.explain()
            recorded.write_text(json.dumps(dataclasses.asdict(result)))
    return DemoRun(cwd, output_root, CommandResult(**json.loads(recorded.read_text())))
