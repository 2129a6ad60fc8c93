"""What the eval runner did with Braintrust, as seen by facetopt afterwards, whatever stopped it.

Inside the runner every SDK request goes through runner_http.RecordingAdapter, which appends one
JSON line per event to the file named by ACTIVITY_ENV (in the eval run folder):
`{"event": "experiment", "id", "name", "project_id"}` when an experiment is created,
`{"event": "logged", "experiment_id", "rows"}` after each accepted log write (rows: eval cases
whose root span, with its output, reached the experiment so far; child spans such as the judge's
and a root span logged before its output do not count) and
`{"event": "refused", "method", "route", "status", "message"}` for a request that failed for good
(status None: no answer). The parent reads it with `read_activity`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIVITY_ENV = "FACETOPT_EVAL_BRAINTRUST_ACTIVITY"
ACTIVITY_FILE = "braintrust_activity.jsonl"


@dataclass
class Refusal:
    method: str
    route: str
    status: int | None
    message: str

    def describe(self) -> str:
        answer = f"HTTP {self.status}" if self.status is not None else "no answer"
        detail = f": {self.message}" if self.message else ""
        return f"{self.method} {self.route} failed ({answer}){detail}"


@dataclass
class BraintrustActivity:
    experiment_id: str | None = None
    experiment_name: str | None = None
    project_id: str | None = None
    logged_rows: int = 0
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def created(self) -> bool:
        return self.experiment_id is not None

    @property
    def refused_log_write(self) -> Refusal | None:
        return next((r for r in self.refusals if r.route.endswith("/logs3")), None)


class ActivityWriter:
    """Appends events (thread-safe; one line each, flushed)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, default=str) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


def read_activity(path: Path) -> BraintrustActivity:
    activity = BraintrustActivity()
    if not path.exists():
        return activity
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a runner killed mid-write
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "experiment":
            activity.experiment_id = str(event.get("id"))
            activity.experiment_name = event.get("name")
            activity.project_id = event.get("project_id")
            activity.logged_rows = 0
        elif kind == "logged" and event.get("experiment_id") == activity.experiment_id:
            activity.logged_rows = max(activity.logged_rows, int(event.get("rows") or 0))
        elif kind == "refused":
            activity.refusals.append(
                Refusal(
                    method=str(event.get("method") or ""),
                    route=str(event.get("route") or ""),
                    status=event.get("status"),
                    message=str(event.get("message") or "")[:300],
                )
            )
    return activity
