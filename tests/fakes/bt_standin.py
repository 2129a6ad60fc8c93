"""A stand-in for the `bt` CLI 0.15 (the Rust binary is not installable here), put on PATH by tests.

`install_bt(folder)` writes an executable `bt` there that behaves as bt 0.15.1 does for Python eval
files (reference/braintrust-api.md, "The `bt` CLI"), failures included:

- arguments: bt's global flags and `eval [--jsonl] [--no-send-logs] [--runner PY] [--num-workers N]
  [--list] [--filter F] [--first N] [--sample N] FILES`; anything else is a usage error (exit 2);
  an explicit file of any name is accepted;
- credentials are resolved before every eval, `--no-send-logs` included: `--api-key` or a
  non-empty `BRAINTRUST_API_KEY` (no network call); else `BRAINTRUST_PROFILE`, else the saved
  profiles (`profiles=` at install; by default two): one profile whose keychain entry is missing
  exits 2, several exit 4 "profile selection required in non-interactive mode" (no terminal here),
  none exits 2; `BRAINTRUST_ENV_FILE` is read without overriding variables already set;
- the interpreter: `--runner`, `BT_EVAL_RUNNER`, `BT_EVAL_PYTHON_RUNNER`, `$VIRTUAL_ENV/bin/python`,
  a `.venv` next to the eval file or in the working folder, then `python3`;
- it runs an embedded runner that imports the file with the SDK's loader so `Eval()` registers,
  logs in when logs are sent, and runs each evaluator (`BT_EVAL_FIRST` keeps the first N rows);
- the runner's stderr is relayed only when bt's own stderr is a terminal (never under a test);
  only its structured error events (a file that failed to import) and "eval runner exited with
  status N" plus a "file an issue" line reach the caller, and bt then exits 1;
- with `--jsonl` one summary line per evaluator on stdout (camelCase keys), mixed with the eval's
  own stdout; a summary whose scores lack a numeric `score` or `improvements` is dropped silently;
- `BT_EVAL_WATCH` set: after the run bt keeps watching and never exits.

Each call is logged (argv, interpreter, environment variable names, never values) to
`bt_calls.jsonl` beside the executable.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

DEFAULT_PROFILES: dict[str, str | None] = {"work": "bt-profile-key-work", "personal": "bt-profile-key-own"}

_RUNNER = r"""
import asyncio, json, os, sys, traceback
from braintrust import login
from braintrust.cli.eval import (
    EvaluatorOpts, EvaluatorState, initialize_handles, run_evaluator_task, update_evaluators,
)

EVENTS = os.environ["BT_STANDIN_EVENTS"]

def event(kind, **data):
    with open(EVENTS, "a") as out:
        out.write(json.dumps({"type": kind, **data}) + "\n")

no_send_logs = os.environ.get("BT_STANDIN_NO_SEND_LOGS") == "1"
opts = EvaluatorOpts(verbose=False, no_send_logs=no_send_logs, no_progress_bars=True,
                     terminate_on_failure=True, watch=False, filters=[], list=False, jsonl=True)
state = EvaluatorState()
try:
    update_evaluators(state, initialize_handles(sys.argv[1:]), terminate_on_failure=True)
except Exception as exc:
    traceback.print_exc()
    event("error", message=f"Failed to load {sys.argv[1]}: {type(exc).__name__}")
    sys.exit(1)
if not no_send_logs:
    login()
first = int(os.environ.get("BT_STANDIN_FIRST") or 0)

async def main():
    ok = True
    for position, loaded in enumerate(state.evaluators):
        if first:
            loaded.evaluator.data = list(loaded.evaluator.data)[:first]
        result = await run_evaluator_task(loaded.evaluator, position, opts)
        failed = [r for r in result.results if r.error]
        if failed:
            print(f"evaluator {loaded.evaluator.eval_name} failed on {len(failed)} rows", file=sys.stderr)
            ok = False
            continue
        s = result.summary
        event("summary", summary={
            "projectName": s.project_name, "projectId": s.project_id,
            "experimentName": s.experiment_name, "experimentId": s.experiment_id,
            "experimentUrl": s.experiment_url, "projectUrl": s.project_url,
            "scores": {n: {"name": n, "score": v.score, "diff": v.diff, "improvements": v.improvements,
                           "regressions": v.regressions} for n, v in s.scores.items()},
        })
    return ok

sys.exit(0 if asyncio.run(main()) else 1)
"""

_SCRIPT = r"""#!{python}
import json, os, shutil, subprocess, sys, tempfile, time

LOG = {log!r}
RUNNER = {runner!r}
PROFILES = {profiles!r}

def fail(code, message):
    print(f"error: {{message}}", file=sys.stderr)
    sys.exit(code)

argv = sys.argv[1:]
secrets = [v for k, v in os.environ.items() if ("KEY" in k or "TOKEN" in k) and len(v) >= 4]
record = {{
    "argv": argv,
    "env_names": sorted(k for k in os.environ if k.startswith(("FACETOPT_", "BRAINTRUST_", "BT_"))),
    "key_in_argv": any(s in a for s in secrets for a in argv),
}}

GLOBAL_VALUE = {{"--env-file", "-o", "--org", "-p", "--project", "--api-key", "--api-url", "--app-url"}}
GLOBAL_FLAG = {{"--json", "--no-input"}}
EVAL_VALUE = {{"--runner", "--num-workers", "--filter", "--first", "--sample", "--language"}}
EVAL_FLAG = {{"--jsonl", "--no-send-logs", "--list"}}
options, files, command = {{}}, [], None
i = 0
while i < len(argv):
    arg = argv[i]
    if command is None and not arg.startswith("-"):
        command = arg
    elif arg in GLOBAL_VALUE or (command == "eval" and arg in EVAL_VALUE):
        if i + 1 >= len(argv):
            fail(2, f"a value is required for '{{arg}}' but none was supplied")
        options[arg] = argv[i + 1]
        i += 1
    elif arg in GLOBAL_FLAG or (command == "eval" and arg in EVAL_FLAG):
        options[arg] = True
    elif arg.startswith("-"):
        fail(2, f"unexpected argument '{{arg}}' found\n\nUsage: bt eval [OPTIONS] [FILES]...")
    else:
        files.append(arg)
    i += 1

def python_for(eval_file):
    for name in ("--runner",):
        if options.get(name):
            return options[name]
    for var in ("BT_EVAL_RUNNER", "BT_EVAL_PYTHON_RUNNER"):
        if os.environ.get(var):
            return os.environ[var]
    if os.environ.get("VIRTUAL_ENV"):
        return os.path.join(os.environ["VIRTUAL_ENV"], "bin", "python")
    for folder in (os.path.dirname(os.path.abspath(eval_file)), os.getcwd()):
        candidate = os.path.join(folder, ".venv", "bin", "python")
        if os.path.exists(candidate):
            return candidate
    return shutil.which("python3") or "python3"

record["python"] = python_for(files[0]) if files else None
with open(LOG, "a") as log:
    log.write(json.dumps(record) + "\n")
if command != "eval":
    fail(2, "unrecognized subcommand (this stand-in knows only `bt eval`)")
if record["key_in_argv"] and "--api-key" not in options:
    fail(2, "an API key was passed on the command line")

# BRAINTRUST_ENV_FILE / --env-file never override variables already set
env = dict(os.environ)
env_file = options.get("--env-file") or env.get("BRAINTRUST_ENV_FILE")
if env_file and os.path.isfile(env_file):
    for line in open(env_file):
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            env.setdefault(name.strip(), value.strip())

# credentials first, also with --no-send-logs
key = options.get("--api-key") or env.get("BRAINTRUST_API_KEY") or ""
if not key.strip():
    wanted = env.get("BRAINTRUST_PROFILE")
    if wanted:
        if wanted not in PROFILES:
            fail(2, f"profile '{{wanted}}' not found")
        key = PROFILES[wanted]
        if not key:
            fail(2, f"no credentials for profile '{{wanted}}' in the keychain")
    elif not PROFILES:
        fail(2, "no credentials found: set BRAINTRUST_API_KEY or run `bt auth login`")
    elif len(PROFILES) == 1:
        (name, key), = PROFILES.items()
        if not key:
            fail(2, f"no credentials for profile '{{name}}' in the keychain")
    elif not (sys.stdin.isatty() and sys.stderr.isatty()):
        fail(4, "profile selection required in non-interactive mode")
env["BRAINTRUST_API_KEY"] = key

if not files:
    print("No evaluators found", file=sys.stderr)
    sys.exit(0)
for f in files:
    if not os.path.isfile(f):
        fail(4, f"file not found: {{f}}")
    if not f.endswith(".py"):
        fail(4, f"this stand-in runs Python eval files only, got {{f}}")
python = record["python"]
if not shutil.which(python) and not os.path.isfile(python):
    fail(1, f"failed to start the eval runner {{python}}: not found")

events = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
events.close()
env.update(
    BT_STANDIN_EVENTS=events.name,
    BT_STANDIN_NO_SEND_LOGS="1" if options.get("--no-send-logs") else "0",
    BT_STANDIN_FIRST=options.get("--first") or env.get("BT_EVAL_FIRST") or "",
)
if options.get("--jsonl"):
    print("bt eval: running 1 file", flush=True)
terminal = sys.stderr.isatty()
child = subprocess.run(
    [python, "-c", RUNNER, *files], env=env, stderr=None if terminal else subprocess.PIPE
)

code = child.returncode
for line in open(events.name):
    item = json.loads(line)
    if item["type"] == "error":
        print(f"error: {{item['message']}}", file=sys.stderr)
    elif item["type"] == "summary":
        summary = item["summary"]
        scores = summary.get("scores") or {{}}
        parsed = all(
            isinstance(s.get("score"), (int, float)) and isinstance(s.get("improvements"), (int, float))
            for s in scores.values()
        )
        if parsed:  # a summary bt cannot parse is dropped without a word
            print(f"{{summary['experimentName']}}: {{len(scores)}} scores", file=sys.stderr)
            if options.get("--jsonl"):
                print(json.dumps(summary), flush=True)
os.unlink(events.name)
if os.environ.get("BT_EVAL_WATCH") or env.get("BT_EVAL_WATCH"):
    print("watching for changes...", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
if code != 0:
    print(f"error: eval runner exited with status {{code}}", file=sys.stderr)
    print("error: if you believe this is a bug in bt, please file an issue", file=sys.stderr)
    sys.exit(1)
sys.exit(0)
"""


def install_bt(folder: Path, profiles: dict[str, str | None] | None = None) -> Path:
    """Write the stand-in `bt` into `folder` (put that folder first on PATH); returns its path.

    `profiles` are the saved bt profiles (name -> key, None when its keychain entry is missing);
    by default two, as for a user who works with several orgs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bt"
    log = folder / "bt_calls.jsonl"
    saved = DEFAULT_PROFILES if profiles is None else profiles
    text = _SCRIPT.format(python=sys.executable, log=str(log), runner=_RUNNER, profiles=saved)
    path.write_text(text, encoding="utf-8")
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
