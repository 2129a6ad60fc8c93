"""The world the stateful test drives: a state folder, one loopback OpenAI fake per model role
(each with its own key), planted secrets, and `facetopt` run in-process through Typer's CliRunner.

Every command is recorded as the line a person would paste (`facetopt ...` with the environment
it needed), with what each fake received while it ran, so the invariants can check the fakes'
own records and a failure prints a sequence that can be replayed by hand.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

from facetopt.cli.main import app
from tests.fakes.openai_server import Failure, FakeOpenAIServer, RecordedRequest

PROJECT = "Stateful project"
ROLES = ("labeller", "facet_model", "judge", "auditor", "proposer")
# role -> (base URL variable, key variable)
ROLE_ENV = {
    "labeller": ("FACET_OPTIMIZER_GROUND_TRUTH_API_BASE", "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY"),
    "facet_model": ("FACET_OPTIMIZER_API_BASE", "FACET_OPTIMIZER_API_KEY"),
    "judge": ("FACET_OPTIMIZER_JUDGE_API_BASE", "FACET_OPTIMIZER_JUDGE_API_KEY"),
    "auditor": ("FACET_OPTIMIZER_AUDIT_API_BASE", "FACET_OPTIMIZER_AUDIT_API_KEY"),
    "proposer": ("FACET_OPTIMIZER_PROPOSER_API_BASE", "FACET_OPTIMIZER_PROPOSER_API_KEY"),
}

# A runner that dies: it writes results for the first `keep` selected rows (all of them when
# keep is -1: the rows were scored and then the disk filled up) and exits 1, as bt does when the
# runner crashes. It stands in for `bt` on PATH.
_DYING_BT = r"""#!{python}
import json, os, sys
config = json.load(open(os.environ["FACETOPT_EVAL_CONFIG"]))
rows = [json.loads(line) for line in open(config["rows_file"]) if line.strip()]
keep = {keep}
keep = len(rows) if keep < 0 else min(keep, len(rows))
with open(os.environ["FACETOPT_EVAL_RESULTS"], "a") as out:
    for row in rows[:keep]:
        out.write(json.dumps({{"id": row["id"], "trial": 0, "facet_name": row["input"].get("facet_name"),
            "split": row["metadata"].get("split"), "input": row["input"], "output": row["expected"],
            "expected": row["expected"], "scores": {{"binary_decision_match": 1.0}},
            "scorer_errors": {{}}, "metadata": row["metadata"], "error": None}}) + "\n")
print("OSError: [Errno 28] No space left on device", file=sys.stderr)
sys.exit(1)
"""


@dataclass
class Step:
    """One command as run: the line to paste, its exit code and output, what each fake received."""

    line: str
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    requests: dict[str, list[RecordedRequest]] = field(default_factory=dict)
    exception: BaseException | None = None
    refused_everything: bool = False  # every model request was answered with an error

    def request_texts(self, role: str) -> list[str]:
        return ["\n".join(_strings(r.body)) for r in self.requests.get(role, [])]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _path_without_bt() -> str:
    folders = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return os.pathsep.join(p for p in folders if not shutil.which("bt", path=p))


class World:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="facetopt-stateful-"))
        self.root = self.tmp / "state"
        self.root.mkdir()
        self.keys = {role: f"sk-{role}-{secrets.token_hex(12)}" for role in ROLES}
        self.braintrust_key = f"bt-secret-{secrets.token_hex(12)}"
        self.fail: tuple[str, str] | None = None  # ("all", "") or ("text", marker) while an eval runs
        self.servers = {role: FakeOpenAIServer(fail_when=self._failure) for role in ROLES}
        for server in self.servers.values():
            server.__enter__()
        self.steps: list[Step] = []
        self.no_bt_path = _path_without_bt()

    def close(self) -> None:
        for server in self.servers.values():
            server.__exit__(None, None, None)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _failure(self, body: dict) -> Failure | None:
        if self.fail is None:
            return None
        kind, marker = self.fail
        if kind == "all" or any(marker in s for s in _strings(body)):
            return Failure(500 if kind == "all" else 400, message="injected failure")
        return None

    @property
    def secrets(self) -> list[str]:
        return [*self.keys.values(), self.braintrust_key]

    def env(self) -> dict[str, str]:
        env = {
            "FACET_OPTIMIZER_BACKEND": "local",
            "FACET_OPTIMIZER_OUTPUT_ROOT": str(self.root),
            "FACET_OPTIMIZER_TARGET_PROJECT": PROJECT,
            "FACET_OPTIMIZER_CALL_DEADLINE": "3",
            "FACET_OPTIMIZER_REQUEST_TIMEOUT": "10",
            # a Braintrust key the local backend must never send anywhere (no Braintrust here)
            "BRAINTRUST_API_KEY": self.braintrust_key,
            "BRAINTRUST_API_URL": "http://127.0.0.1:9",
            "BRAINTRUST_APP_URL": "http://127.0.0.1:9",
            "PATH": self.no_bt_path,
        }
        for role, (base, key) in ROLE_ENV.items():
            env[base] = self.servers[role].url
            env[key] = self.keys[role]
        return env

    def dying_bt(self, keep: int) -> str:
        """A PATH whose `bt` is a runner that dies after writing `keep` results (-1: all)."""
        folder = self.tmp / f"dying-bt-{keep}"
        folder.mkdir(exist_ok=True)
        path = folder / "bt"
        path.write_text(_DYING_BT.format(python=sys.executable, keep=keep), encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return os.pathsep.join([str(folder), self.no_bt_path])

    def run(self, *args: str, env: dict[str, str] | None = None, fail: tuple[str, str] | None = None) -> Step:
        extra = dict(env or {})
        before = {role: server.count for role, server in self.servers.items()}
        self.fail = fail
        try:
            result = CliRunner().invoke(app, list(args), env={**self.env(), **extra}, catch_exceptions=True)
        finally:
            self.fail = None
        shown = {k: v for k, v in extra.items() if k != "PATH"}
        if "PATH" in extra:
            shown["PATH"] = f"<a bt that dies: {extra['PATH'].split(os.pathsep)[0]}>"
        if fail is not None:
            shown["<endpoint fails>"] = f"{fail[0]} {fail[1][:30]!r}"
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items())
        line = (prefix + " " if prefix else "") + "facetopt " + shlex.join(args)
        exception = result.exception if not isinstance(result.exception, SystemExit) else None
        step = Step(
            line=line,
            args=list(args),
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            requests={role: server.requests[before[role] :] for role, server in self.servers.items()},
            exception=exception,
            refused_everything=fail is not None and fail[0] == "all",
        )
        self.steps.append(step)
        return step

    def record_note(self, line: str) -> Step:
        """An action taken outside facetopt (an edit by hand), kept in the transcript as a comment."""
        step = Step(line=line, args=["#"], exit_code=0, stdout="", stderr="")
        self.steps.append(step)
        return step

    def transcript(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env().items() if k not in ("PATH",) and "KEY" not in k)
        lines = [f"# environment: {env} (+ one key per role, a BRAINTRUST_API_KEY)"]
        lines += [s.line if s.args == ["#"] else f"{s.line}    # exit {s.exit_code}" for s in self.steps]
        return "\n".join(lines)
