"""A stand-in for the `bt` CLI (the Rust binary is not installable here), put on PATH by tests.

`install_bt(folder)` writes an executable `bt` there. It behaves as `bt eval` does for Python
files: it checks the command line facetopt gives it (`eval --jsonl [--no-send-logs] FILE`, no key
anywhere in it), takes the Python interpreter from BT_EVAL_PYTHON_RUNNER, imports the eval file
with the braintrust SDK's loader so `Eval()` registers, runs each evaluator, and prints one JSON
summary line per evaluator on stdout with bt's camelCase keys, after a line of non-JSON chatter
(bt's stdout is mixed with the eval's own). Exit codes follow bt: 2 for usage or missing
credentials, 1 when an evaluator failed. Each call is logged (argv and environment variable
names, never values) to `bt_calls.jsonl` beside the executable.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

_RUNNER = r"""
import asyncio, json, os, sys
from braintrust import login
from braintrust.cli.eval import (
    EvaluatorOpts, EvaluatorState, initialize_handles, run_evaluator_task, update_evaluators,
)

no_send_logs = os.environ.get("BT_STANDIN_NO_SEND_LOGS") == "1"
opts = EvaluatorOpts(verbose=False, no_send_logs=no_send_logs, no_progress_bars=True,
                     terminate_on_failure=True, watch=False, filters=[], list=False, jsonl=True)
state = EvaluatorState()
update_evaluators(state, initialize_handles(sys.argv[1:]), terminate_on_failure=True)
if not no_send_logs:
    login()

async def main():
    ok = True
    for position, loaded in enumerate(state.evaluators):
        result = await run_evaluator_task(loaded.evaluator, position, opts)
        failed = [r for r in result.results if r.error]
        if failed:
            print(f"evaluator {loaded.evaluator.eval_name} failed on {len(failed)} rows", file=sys.stderr)
            ok = False
            continue
        s = result.summary
        print(f"{s.experiment_name}: {len(result.results)} rows", file=sys.stderr)
        print(json.dumps({
            "projectName": s.project_name, "projectId": s.project_id,
            "experimentName": s.experiment_name, "experimentId": s.experiment_id,
            "experimentUrl": s.experiment_url, "projectUrl": s.project_url,
            "scores": {n: {"name": n, "score": v.score, "diff": v.diff, "improvements": v.improvements,
                           "regressions": v.regressions} for n, v in s.scores.items()},
        }), flush=True)
    return ok

sys.exit(0 if asyncio.run(main()) else 1)
"""

_SCRIPT = r"""#!{python}
import json, os, subprocess, sys

LOG = {log!r}
RUNNER = {runner!r}

def fail(code, message):
    print(f"error: {{message}}", file=sys.stderr)
    sys.exit(code)

argv = sys.argv[1:]
secrets = [v for k, v in os.environ.items() if ("KEY" in k or "TOKEN" in k) and len(v) >= 4]
with open(LOG, "a") as log:
    log.write(json.dumps({{
        "argv": argv,
        "python": os.environ.get("BT_EVAL_PYTHON_RUNNER"),
        "env_names": sorted(k for k in os.environ if k.startswith(("FACETOPT_", "BRAINTRUST_", "BT_"))),
        "key_in_argv": any(s in a for s in secrets for a in argv),
    }}) + "\n")
if any(s in a for s in secrets for a in argv):
    fail(2, "an API key was passed on the command line")
if not argv or argv[0] != "eval":
    fail(2, "usage: bt eval [--jsonl] [--no-send-logs] FILES")
flags = [a for a in argv[1:] if a.startswith("-")]
files = [a for a in argv[1:] if not a.startswith("-")]
if set(flags) - {{"--jsonl", "--no-send-logs"}}:
    fail(2, f"unexpected arguments {{flags}}")
if "--jsonl" not in flags:
    fail(2, "facetopt must ask for --jsonl summaries")
if len(files) != 1 or not files[0].endswith(".py") or not os.path.isfile(files[0]):
    fail(2, f"expected one existing .py eval file, got {{files}}")
python = os.environ.get("BT_EVAL_PYTHON_RUNNER")
if not python or not os.path.isfile(python):
    fail(2, "BT_EVAL_PYTHON_RUNNER must name the project's Python")
no_send_logs = "--no-send-logs" in flags
if not no_send_logs and not os.environ.get("BRAINTRUST_API_KEY"):
    fail(2, "no credentials: set BRAINTRUST_API_KEY or pass --no-send-logs")
print("bt eval: running 1 file", flush=True)
env = dict(os.environ, BT_STANDIN_NO_SEND_LOGS="1" if no_send_logs else "0")
sys.exit(subprocess.call([python, "-c", RUNNER, files[0]], env=env))
"""


def install_bt(folder: Path) -> Path:
    """Write the stand-in `bt` into `folder` (put that folder first on PATH); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bt"
    log = folder / "bt_calls.jsonl"
    path.write_text(_SCRIPT.format(python=sys.executable, log=str(log), runner=_RUNNER), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def bt_calls(folder: Path) -> list[dict]:
    """What each call of the stand-in in `folder` saw (argv, interpreter, env var names)."""
    log = folder / "bt_calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def install_failing_bt(folder: Path, exit_code: int, stderr_lines: list[str]) -> Path:
    """A `bt` that prints `stderr_lines` and exits with `exit_code` (a runner failure)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bt"
    body = "".join(f"print({line!r}, file=sys.stderr)\n" for line in stderr_lines)
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}sys.exit({exit_code})\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


_ERRORING = r"""#!{python}
import json, os, sys
config = json.load(open(os.environ["FACETOPT_EVAL_CONFIG"]))
with open(config["rows_file"]) as rows, open(os.environ["FACETOPT_EVAL_RESULTS"], "a") as out:
    for line in rows:
        row = json.loads(line)
        failed = {{"id": row["id"], "trial": 0, "output": "", "error": "HTTP 503: model overloaded"}}
        out.write(json.dumps({{**failed, "metadata": row["metadata"], "scores": {{}}}}) + "\n")
print(json.dumps({{"projectName": config["project"], "experimentName": config["experiment_name"],
                  "experimentId": None, "experimentUrl": None, "scores": {{}}}}))
"""


def install_erroring_bt(folder: Path) -> Path:
    """A `bt` that, without running a model, records every selected row as failed and exits 0."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bt"
    path.write_text(_ERRORING.format(python=sys.executable), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
