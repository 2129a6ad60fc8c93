"""Run an eval file through `bt eval` (or the braintrust SDK's own runner) and read its summary.

bt passes no arguments to Python eval files, so everything the eval needs travels in the
environment; keys only ever there, never on the command line. bt prints one JSON summary line
per evaluator with `--jsonl` (camelCase keys), the SDK runner prints the same line with
snake_case keys; both are mixed with whatever the eval prints, so non-JSON lines are skipped.
Ctrl-C is forwarded to the runner, which runs in its own session so the terminal's signal
reaches facetopt alone; facetopt then exits 130.
"""

from __future__ import annotations

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

from facetopt.errors import Interrupted

RUNNER_BT = "bt"
RUNNER_SDK = "braintrust-sdk"
SDK_FALLBACK_NOTE = "bt not found: using the braintrust SDK's eval runner (python -m braintrust.cli eval)"
STDERR_TAIL_LINES = 40
INTERRUPT_GRACE_SECONDS = 10.0


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

    @property
    def ok(self) -> bool:
        return self.returncode == 0

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

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def new_lines(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return 0
        complete = chunk.rfind(b"\n") + 1
        self.offset += complete
        return chunk[:complete].count(b"\n")


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


def _stop(process: subprocess.Popen, grace: float) -> None:
    """Forward Ctrl-C to the runner's process group; kill it when it does not stop in time."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGINT)
        else:  # pragma: no cover - Windows
            process.send_signal(signal.SIGINT)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except ProcessLookupError:
        pass


def run_runner(
    command: RunnerCommand,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    on_tick: Callable[[], None] | None = None,
    on_stderr: Callable[[str], None] | None = None,
    tick_seconds: float = 0.25,
    interrupt_grace: float = INTERRUPT_GRACE_SECONDS,
) -> RunnerOutcome:
    """Run the runner to completion; `on_tick` is called while it runs (progress), `on_stderr` per line."""
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

    process = subprocess.Popen(
        command.argv,
        env={**env, **command.env},
        cwd=str(cwd) if cwd else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    readers = [
        threading.Thread(target=_read_lines, args=(process.stdout, on_stdout_line), daemon=True),
        threading.Thread(target=_read_lines, args=(process.stderr, on_stderr_line), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        while process.poll() is None:
            if on_tick is not None:
                on_tick()
            try:
                process.wait(timeout=tick_seconds)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        _stop(process, interrupt_grace)
        raise Interrupted(
            "interrupted: the eval runner was stopped",
            hint="re-run the same command; nothing was recorded for this run",
        ) from None
    for reader in readers:
        reader.join(timeout=5)
    if on_tick is not None:
        on_tick()
    return RunnerOutcome(
        returncode=process.returncode,
        summaries=summaries,
        stderr_tail=list(stderr_tail),
        stdout_tail=list(stdout_tail),
        seconds=time.monotonic() - started,
    )
