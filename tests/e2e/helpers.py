"""Running `facetopt` as a user does (a separate process, a clean environment, its own working
folder), and the demo run every end-to-end test reads (the fixture is in conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

FACETOPT = [sys.executable, "-m", "facetopt.cli"]
_ISOLATED_PREFIXES = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_", "BT_", "FACETOPT_")
COMMAND_TIMEOUT_SECONDS = 180
# Settings a user may have exported; the demo must not let them change its loop.
STRAY_USER_SETTINGS = {
    "FACET_OPTIMIZER_MAX_ROWS": "5",
    "FACET_OPTIMIZER_DATASET_PROJECT": "someone-elses-project",
}


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def explain(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )


def facetopt_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any facetopt, Braintrust or OpenAI setting or key, and without
    a `bt` executable on PATH (so the eval runs the braintrust SDK's runner, as in the other tests)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_ISOLATED_PREFIXES)}
    folders = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    env["PATH"] = os.pathsep.join(p for p in folders if not shutil.which("bt", path=p))
    env["BRAINTRUST_DISABLE_ATEXIT_FLUSH"] = "1"
    env.update(extra)
    return env


def run_facetopt(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> CommandResult:
    """`facetopt <args>` in its own process, from `cwd`."""
    argv = [*FACETOPT, *args]
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env if env is not None else facetopt_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    return CommandResult(["facetopt", *args], done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class DemoRun:
    cwd: Path
    output_root: Path
    result: CommandResult

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self.result.json()

    @property
    def announced_commands(self) -> list[str]:
        """The `$ ...` lines the demo printed (on stderr under --json), one per step, in order."""
        return [line[2:] for line in self.result.stderr.splitlines() if line.startswith("$ ")]
