"""Run an eval file through `bt eval` (or the braintrust SDK's own runner) and read its summary.

bt passes no arguments to Python eval files, so everything the eval needs travels in the
environment; keys only ever there, never on the command line. bt prints one JSON summary line
per evaluator with `--jsonl` (camelCase keys), the SDK runner prints the same line with
snake_case keys; both are mixed with whatever the eval prints, so non-JSON lines are skipped.
The runner runs in its own session (process group) so the terminal's Ctrl-C reaches facetopt
alone. facetopt forwards SIGINT, SIGTERM and SIGHUP to the runner's group as SIGINT, kills the
group after a grace period, and never leaves it behind: a try/finally around the wait and an
atexit hook kill whatever is left of the group; when facetopt is killed outright, the runner dies
with it (parent_watch.py). Once every row is scored (`finished()`), the
runner has `flush_deadline` seconds to send its logs and exit before it is stopped the same way.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetopt.clients.braintrust.parent_watch import PARENT_ENV, die_with_parent

RUNNER_BT = "bt"
RUNNER_SDK = "braintrust-sdk"
SDK_FALLBACK_NOTE = "bt not found: using the braintrust SDK's eval runner (python -m braintrust.cli eval)"
STDERR_TAIL_LINES = 40
INTERRUPT_GRACE_SECONDS = 10.0
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
STOPPED_BY_DEADLINE = "deadline"
_LIVE_GROUPS: set[int] = set()  # process groups of runners still running (killed at exit)


@dataclass(frozen=True)
class RunnerCommand:
    runner: str  # RUNNER_BT or RUNNER_SDK
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the child's environment

    @property
    def display(self) -> str:
        """The command line as a user would type it (it never holds a key)."""
        return " ".join(self.argv)


@dataclass(frozen=True)
class RunnerSummary:
    project_name: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    experiment_url: str | None = None
    project_url: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)


@dataclass
class RunnerOutcome:
    returncode: int
    summaries: list[RunnerSummary]
    stderr_tail: list[str]
    stdout_tail: list[str]
    seconds: float
    stopped_by: str | None = None  # "SIGINT", "SIGTERM", "SIGHUP" or STOPPED_BY_DEADLINE

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.stopped_by is None

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None and self.stopped_by != STOPPED_BY_DEADLINE

    def log_text(self, command: RunnerCommand) -> str:
        """The command line, exit code and output tails, as kept in the run folder's runner.log."""
        parts = [
            "$ " + command.display,
            f"exit code {self.returncode}",
            "--- stderr (tail)",
            *self.stderr_tail,
        ]
        return "\n".join([*parts, "--- stdout (tail)", *self.stdout_tail]) + "\n"

    def tail_text(self, lines: int = 15) -> str:
        tail = [line for line in self.stderr_tail if line.strip()][-lines:]
        if not tail:
            tail = [line for line in self.stdout_tail if line.strip()][-lines:]
        return "\n".join(tail)


class LineCounter:
    """Counts complete lines appended to a file since the last call (progress from a results file)."""

    def __init__(self, path: Path, ignore: bytes | None = None):
        self.path = path
        self.offset = 0
        self.ignore = ignore  # lines starting with this are not counted

    def new_lines(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return 0
        complete = chunk.rfind(b"\n") + 1
        self.offset += complete
        lines = chunk[:complete].count(b"\n")
        if self.ignore is not None:
            lines -= sum(1 for line in chunk[:complete].split(b"\n") if line.startswith(self.ignore))
        return lines


def find_bt(path: str | None = None) -> str | None:
    """The `bt` executable on PATH (or on `path`), else None."""
    return shutil.which("bt", path=path)


def runner_command(
    eval_file: Path,
    *,
    no_send_logs: bool,
    python: str | None = None,
    bt: str | None = None,
) -> RunnerCommand:
    """`bt eval --jsonl [--no-send-logs] --runner PYTHON FILE`, else the SDK runner.

    The interpreter is given on the command line (`--runner` wins over every variable bt reads), so
    neither a user's `BT_EVAL_RUNNER` nor bt's own search (`$VIRTUAL_ENV`, a `.venv`, `python3`)
    can pick a Python without facetopt installed.
    """
    python = python or sys.executable
    if bt:
        logs = ["--no-send-logs"] if no_send_logs else []
        argv = [bt, "eval", "--jsonl", *logs, "--runner", python, str(eval_file)]
        return RunnerCommand(RUNNER_BT, argv, {})
    argv = [
        python,
        "-m",
        "braintrust.cli",
        "eval",
        "--jsonl",
        "--no-progress-bars",  # facetopt draws its own progress from the results file
        *(["--no-send-logs"] if no_send_logs else []),
        str(eval_file),
    ]
    return RunnerCommand(RUNNER_SDK, argv, {})


def _pick(line: Mapping[str, Any], snake: str, camel: str) -> Any:
    value = line.get(camel)
    return line.get(snake) if value is None else value


def _scores(raw: Any) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    if not isinstance(raw, Mapping):
        return scores
    for name, entry in raw.items():
        value = entry.get("score") if isinstance(entry, Mapping) else entry
        scores[str(name)] = float(value) if isinstance(value, int | float) else None
    return scores


def parse_summary_line(text: str) -> RunnerSummary | None:
    """One runner summary from a stdout line, or None for any other line."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        line = json.loads(text)
    except ValueError:
        return None
    if not isinstance(line, dict):
        return None
    name = _pick(line, "experiment_name", "experimentName")
    if name is None and _pick(line, "project_name", "projectName") is None:
        return None
    return RunnerSummary(
        project_name=_pick(line, "project_name", "projectName"),
        experiment_name=name,
        experiment_id=_pick(line, "experiment_id", "experimentId"),
        experiment_url=_pick(line, "experiment_url", "experimentUrl"),
        project_url=_pick(line, "project_url", "projectUrl"),
        scores=_scores(line.get("scores")),
    )


def parse_summary_lines(stdout_text: str) -> list[RunnerSummary]:
    return [s for s in (parse_summary_line(line) for line in stdout_text.splitlines()) if s is not None]


def _read_lines(stream: Any, sink: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, ""):
        sink(raw.rstrip("\r\n"))
    stream.close()


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived while the runner ran (handled like Ctrl-C)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _kill_group(pgid: int, sig: int) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(pgid, sig)
        else:  # pragma: no cover - Windows
            os.kill(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(process: subprocess.Popen, grace: float) -> None:
    """SIGINT to the runner's process group (as Ctrl-C would); SIGKILL to the group after `grace`."""
    if process.poll() is None:
        _kill_group(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # bt's own child (the Python runner) shares the group: nothing of it may outlive facetopt
    _kill_group(process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
        pass


@atexit.register
def _kill_live_runners() -> None:
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid, getattr(signal, "SIGKILL", signal.SIGTERM))
    _LIVE_GROUPS.clear()


class _ForwardedSignals:
    """While the runner runs, SIGTERM and SIGHUP raise in the main thread like Ctrl-C does."""

    def __enter__(self) -> _ForwardedSignals:
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, _frame: Any) -> None:
        raise _Signalled(signum)

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def run_runner(
    command: RunnerCommand,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    on_tick: Callable[[], None] | None = None,
    on_stderr: Callable[[str], None] | None = None,
    tick_seconds: float = 0.25,
    interrupt_grace: float = INTERRUPT_GRACE_SECONDS,
    finished: Callable[[], bool] | None = None,
    flush_deadline: float | None = None,
) -> RunnerOutcome:
    """Run the runner to completion; `on_tick` is called while it runs (progress), `on_stderr` per
    line. Once `finished()` is true the runner has `flush_deadline` seconds left to exit. A signal
    or the deadline stops the runner's whole group; the outcome's `stopped_by` says which."""
    started = time.monotonic()
    summaries: list[RunnerSummary] = []
    stdout_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    def on_stdout_line(line: str) -> None:
        summary = parse_summary_line(line)
        if summary is not None:
            summaries.append(summary)
        else:
            stdout_tail.append(line)

    def on_stderr_line(line: str) -> None:
        stderr_tail.append(line)
        if on_stderr is not None:
            on_stderr(line)

    stopped_by: str | None = None
    with _ForwardedSignals():
        process = subprocess.Popen(
            command.argv,
            env={**env, **command.env, PARENT_ENV: str(os.getpid())},
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - arms prctl only, loaded before the fork
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        _LIVE_GROUPS.add(process.pid)
        readers = [
            threading.Thread(target=_read_lines, args=(process.stdout, on_stdout_line), daemon=True),
            threading.Thread(target=_read_lines, args=(process.stderr, on_stderr_line), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            flush_started: float | None = None
            while process.poll() is None:
                if on_tick is not None:
                    on_tick()
                if flush_deadline is not None and finished is not None:
                    if flush_started is None and finished():
                        flush_started = time.monotonic()
                    if flush_started is not None and time.monotonic() - flush_started > flush_deadline:
                        stopped_by = STOPPED_BY_DEADLINE
                        _stop(process, min(interrupt_grace, 5.0))
                        break
                try:
                    process.wait(timeout=tick_seconds)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            stopped_by = "SIGINT"
            _stop(process, interrupt_grace)
        except _Signalled as caught:
            stopped_by = signal.Signals(caught.signum).name
            _stop(process, interrupt_grace)
        finally:
            if process.poll() is None:  # anything else raised: the runner must not outlive us
                _stop(process, 1.0)
            _kill_group(process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            _LIVE_GROUPS.discard(process.pid)
    for reader in readers:
        reader.join(timeout=5)
    if on_tick is not None:
        on_tick()
    return RunnerOutcome(
        returncode=process.returncode if process.returncode is not None else -1,
        summaries=summaries,
        stderr_tail=list(stderr_tail),
        stdout_tail=list(stdout_tail),
        seconds=time.monotonic() - started,
        stopped_by=stopped_by,
    )
