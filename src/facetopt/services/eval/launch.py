"""Starting the eval runner: the run folder's snapshot (rows, config), the runner's environment
(keys only there, never on its command line), progress drawn from the results file, the kept log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from facetopt.clients import artifacts
from facetopt.clients.braintrust.activity import ACTIVITY_ENV, ACTIVITY_FILE
from facetopt.clients.braintrust.bt_runner import (
    SDK_FALLBACK_NOTE,
    LineCounter,
    RunnerOutcome,
    find_bt,
    run_runner,
    runner_command,
)
from facetopt.clients.llm.endpoints import Endpoint, without_credentials
from facetopt.errors import EvalRunError, redact
from facetopt.services.eval.config import (
    BRAINTRUST_TIMEOUT_ENV,
    CONFIG_ENV,
    JUDGE_KEY_ENV,
    JUDGE_URL_ENV,
    MODEL_KEY_ENV,
    MODEL_URL_ENV,
    REPLAY_ENV,
    RESULTS_ENV,
)
from facetopt.services.eval.plan import EvalPlan
from facetopt.services.eval.results import EXPERIMENT_LINE
from facetopt.services.eval.runner_errors import ERRORS_ENV, ERRORS_FILE, failure_cause, read_errors
from facetopt.services.progress import Progress, show_detail
from facetopt.settings import Settings

EVAL_TASK = "eval"
PLACEHOLDER_KEY = "facetopt-no-send-logs"  # not a credential: the runner never logs in without logs
CLEARED_PREFIXES = ("BT_EVAL_", "FACETOPT_EVAL_")
CLEARED_NAMES = frozenset({"BRAINTRUST_PROFILE", "BRAINTRUST_ENV_FILE"})


def _cleared(name: str) -> bool:
    return name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES


PACKAGED_EVAL_FILE = Path(__file__).resolve().parents[2] / "eval_facet.py"
NOTICES_DIR = ".notices"


def first_notice(output_root: Path, key: str) -> bool:
    """True the first time `key` is asked about under this output root (a marker file remembers it)."""
    marker = output_root / NOTICES_DIR / key
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with marker.open("x", encoding="utf-8") as handle:
            handle.write("said\n")
    except FileExistsError:
        return False
    except OSError:
        return True  # an unwritable root: saying it again beats never saying it
    return True


def runner_environment(
    base: Mapping[str, str],
    settings: Settings,
    *,
    config_path: Path,
    results_path: Path,
    model: Endpoint,
    judge: Endpoint,
    send_logs: bool,
    log_rows: int,
    errors_path: Path | None = None,
) -> dict[str, str]:
    """The runner's environment: paths, keys (never on the command line), Braintrust logging setup.

    bt reads `BT_EVAL_*` (`BT_EVAL_WATCH` makes it never exit, `BT_EVAL_FIRST` runs part of the
    rows), `BRAINTRUST_PROFILE` and `BRAINTRUST_ENV_FILE` from the environment: none of a user's
    values may reach it. bt resolves credentials before every eval, even with `--no-send-logs`, and
    with several saved profiles and no key it stops (exit 4) for want of a terminal; without logs the
    runner never logs in, so a placeholder key satisfies it.
    """
    env = {k: v for k, v in base.items() if not _cleared(k)}
    env[CONFIG_ENV] = str(config_path)
    env[RESULTS_ENV] = str(results_path)
    env[ERRORS_ENV] = str(errors_path or results_path.with_name(ERRORS_FILE))
    for name, endpoint in ((MODEL_KEY_ENV, model), (JUDGE_KEY_ENV, judge)):
        if (secret := endpoint.secret()) is not None:
            env[name] = secret
    for name, endpoint in ((MODEL_URL_ENV, model), (JUDGE_URL_ENV, judge)):
        if endpoint.base_url and endpoint.base_url != without_credentials(endpoint.base_url):
            env[name] = endpoint.base_url
    if not send_logs:
        env["BRAINTRUST_API_KEY"] = PLACEHOLDER_KEY
        return env
    if settings.braintrust_api_key is not None:
        env["BRAINTRUST_API_KEY"] = settings.braintrust_api_key.get_secret_value()
    env["BRAINTRUST_APP_URL"] = settings.braintrust_app_url
    if settings.braintrust_api_url:
        env["BRAINTRUST_API_URL"] = settings.braintrust_api_url
    if settings.target_org:
        env["BRAINTRUST_ORG_NAME"] = settings.target_org
    # the SDK drops a log batch it cannot send with only a printed warning; synchronous flushing
    # makes that a runner failure instead, and the queue must then hold every span until the end
    env["BRAINTRUST_SYNC_FLUSH"] = "1"
    env["BRAINTRUST_QUEUE_SIZE"] = str(max(25_000, log_rows * 60))
    # one request never waits longer than the whole flush may
    env[BRAINTRUST_TIMEOUT_ENV] = f"{max(1.0, min(60.0, settings.flush_deadline)):g}"
    return env


def _bt_errors(outcome: RunnerOutcome) -> list[str]:
    """bt's own `error: ...` lines (the only stderr of bt's that reaches a non-terminal)."""
    return [line[len("error:") :].strip() for line in outcome.stderr_tail if line.startswith("error:")]


def runner_failure(
    outcome: RunnerOutcome, runner: str, run_dir: Path, secrets: list[str | None]
) -> EvalRunError:
    """The failure told from what happened: the eval's error file first, then bt's `error:` text."""
    where = f"the runner's output is in {run_dir / 'runner.log'}"
    cause = failure_cause(read_errors(run_dir / ERRORS_FILE))
    bt_said = "; ".join(e for e in _bt_errors(outcome) if "file an issue" not in e.lower())
    said = redact(bt_said, secrets)
    code = outcome.returncode
    if cause is not None:
        kind, message = cause
        message = redact(message, secrets)
        hints = {
            "login": "Braintrust refused the runner's login: check BRAINTRUST_API_KEY, BRAINTRUST_ORG_NAME "
            "and BRAINTRUST_APP_URL, or pass --no-send-logs",
            "log_write": "Braintrust refused the experiment's log writes: run again later, or pass "
            "--no-send-logs to keep the experiment locally",
        }
        return EvalRunError(
            f"the eval failed inside the runner ({runner}): {message}",
            hint=f"{hints.get(kind, 'the full error is in ' + str(run_dir / ERRORS_FILE))}; {where}",
        )
    if runner == "bt" and code in (2, 3, 4) and said:
        lowered = said.lower()
        if code == 3:
            hint = "bt could not reach Braintrust (network or server error): run again later"
        elif any(word in lowered for word in ("profile", "credential", "api key", "keychain", "login")):
            hint = "bt could not resolve Braintrust credentials: set BRAINTRUST_API_KEY"
        elif code == 2:
            hint = "bt rejected the command facetopt gave it: check that bt is 0.15 or newer (`bt --version`)"
        else:
            hint = "bt rejected the request (exit 4)"
        return EvalRunError(f"bt eval failed (exit {code}): {said}", hint=f"{hint}; {where}")
    tail = redact(outcome.tail_text(), secrets) or "(no output)"
    return EvalRunError(f"the eval runner ({runner}) exited with code {code}:\n{tail}", hint=where)


def launch(
    plan: EvalPlan,
    run_dir: Path,
    progress: Progress,
    announce: Callable[[str], None],
    environ: Mapping[str, str],
    replay: Path | None = None,
) -> tuple[str, RunnerOutcome]:
    """Snapshot rows and config into the run folder, run the runner, keep its log: (runner, outcome).
    The outcome may be a failure, an interruption or a passed flush deadline: the caller records
    what was scored before reporting it. `replay`: a results file whose rows are logged, not re-run."""
    rows_path, config_path, results_path = (
        run_dir / "rows.jsonl",
        run_dir / "config.json",
        run_dir / "results.jsonl",
    )
    artifacts.write_jsonl(rows_path, plan.rows)
    artifacts.write_text(config_path, plan.config(rows_path).model_dump_json(indent=2) + "\n")
    results_path.touch()
    (run_dir / ERRORS_FILE).touch()
    bt = find_bt(environ.get("PATH"))
    command = runner_command(PACKAGED_EVAL_FILE, no_send_logs=not plan.send_logs, bt=bt)
    if bt is None and first_notice(plan.settings.output_root, "sdk-runner"):
        announce(SDK_FALLBACK_NOTE)
        plan.notes.append(SDK_FALLBACK_NOTE)
    env = runner_environment(
        environ,
        plan.settings,
        config_path=config_path.resolve(),
        results_path=results_path.resolve(),
        errors_path=(run_dir / ERRORS_FILE).resolve(),
        model=plan.model,
        judge=plan.judge,
        send_logs=plan.send_logs,
        log_rows=len(plan.rows) * plan.settings.trials,
    )
    env[ACTIVITY_ENV] = str((run_dir / ACTIVITY_FILE).resolve())
    if replay is not None:
        env[REPLAY_ENV] = str(replay.resolve())
    progress.stage(
        f"evaluating {len(plan.rows)} rows x {plan.settings.trials} trial(s) with {plan.model.model} "
        f"({plan.model.label}), judge {plan.judge.model} ({plan.judge.label}), via {command.runner}"
    )
    # the eval also writes the experiment it logs to there: a line that is not a scored row
    counter = LineCounter(results_path, ignore=EXPERIMENT_LINE)
    expected = len(plan.rows) * plan.settings.trials
    progress.start(EVAL_TASK, expected)
    scored = 0

    policy_file = results_path.with_suffix(".policy.txt")

    def tick() -> None:
        nonlocal scored
        if (new := counter.new_lines()) > 0:
            scored += new
            progress.advance(EVAL_TASK, new)
        try:
            show_detail(progress, EVAL_TASK, policy_file.read_text(encoding="utf-8"))
        except OSError:
            pass

    try:
        outcome = run_runner(
            command,
            env,
            on_tick=tick,
            finished=lambda: scored >= expected,
            flush_deadline=plan.settings.flush_deadline if plan.send_logs else None,
        )
    finally:
        progress.finish(EVAL_TASK)
    artifacts.write_text(run_dir / "runner.log", redact(outcome.log_text(command), plan.secrets()))
    return command.runner, outcome
