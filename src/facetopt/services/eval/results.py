"""The results file of an eval run: one JSON line per (row, trial), appended by the runner once the
row's task and every scorer have reported, and read back by facetopt whatever runner ran the eval."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facetopt.domain.dataset import DatasetRow
from facetopt.domain.experiments import EVAL_ERROR_KEY, SCORE_NAMES, EvalRow
from facetopt.facets.decide.metrics import mean_or_none

ERROR_KEY = EVAL_ERROR_KEY  # in a row's metadata: its model call failed, so its scores are None
NO_RESULT = "no result from the eval runner (the row's task or scorers never finished)"

EXPERIMENT_KEY = "experiment"  # a results-file line that names the experiment, not a row
EXPERIMENT_LINE = b'{"' + EXPERIMENT_KEY.encode() + b'"'  # how such a line starts
SUMMARY_SOURCE = "summary"

ResultKey = tuple[str, int]


def result_key(metadata: Mapping[str, Any] | None) -> ResultKey:
    """(dataset row id, trial) of a case's metadata."""
    metadata = metadata or {}
    return str(metadata.get("dataset_row_id")), int(metadata.get("trial", 0) or 0)


# -- the runner side -------------------------------------------------------------------------------


class ResultsWriter:
    """Appends one JSON line per (row, trial) once its task and every scorer have reported."""

    def __init__(self, path: Path, score_names: tuple[str, ...] = SCORE_NAMES):
        self._handle = Path(path).open("a", encoding="utf-8")
        self._names = score_names
        self._pending: dict[ResultKey, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _entry(self, key: ResultKey) -> dict[str, Any]:
        return self._pending.setdefault(key, {"scores": {}, "scorer_errors": {}})

    def task_done(self, key: ResultKey, record: dict[str, Any]) -> None:
        with self._lock:
            self._entry(key).update(record)
            self._maybe_write(key)

    def scored(
        self,
        key: ResultKey,
        name: str,
        value: float | None,
        error: str | None = None,
        usage: dict[str, int] | None = None,
        from_cache: bool = False,
    ) -> None:
        with self._lock:
            entry = self._entry(key)
            entry["scores"][name] = value
            if usage:
                entry["judge_usage"] = usage
            if from_cache:
                entry["judge_from_cache"] = True
            if error:
                entry["scorer_errors"][name] = error
            self._maybe_write(key)

    def experiment(self, entry: dict[str, Any]) -> None:
        """The experiment the SDK logged to (from its summary, or its live experiment object)."""
        with self._lock:
            self._handle.write(json.dumps({EXPERIMENT_KEY: entry}, ensure_ascii=False, default=str) + "\n")
            self._handle.flush()

    def _maybe_write(self, key: ResultKey) -> None:
        entry = self._pending[key]
        if "id" not in entry or any(name not in entry["scores"] for name in self._names):
            return
        del self._pending[key]
        self._handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()


# -- the parent side -------------------------------------------------------------------------------


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every complete line of the results file (a runner killed mid-write may leave a partial one)."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
    return records


def read_experiment(path: Path) -> dict[str, Any] | None:
    """The experiment the eval says it logged to: its summary's entry first, else the live object's."""
    if not path.exists():
        return None
    found: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if EXPERIMENT_KEY not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            entry = record.get(EXPERIMENT_KEY) if isinstance(record, dict) else None
            if isinstance(entry, dict) and entry.get("id"):
                found.append(entry)
    from_summary = [e for e in found if e.get("source") == SUMMARY_SOURCE]
    chosen = from_summary or found
    return chosen[-1] if chosen else None


def eval_rows(rows: list[DatasetRow], records: list[dict[str, Any]], trials: int = 1) -> list[EvalRow]:
    """One EvalRow per selected row, in the rows' order; scores are means over the row's trials."""
    by_row: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_row.setdefault(str(record["id"]), []).append(record)
    built = []
    for row in rows:
        found = sorted(by_row.get(row.id, []), key=lambda r: int(r.get("trial") or 0))
        base = dict(
            id=row.id, facet_name=row.facet_name, split=row.split, input=row.input, expected=row.expected
        )
        if not found:
            scores: dict[str, float | None] = dict.fromkeys(SCORE_NAMES)
            built.append(
                EvalRow(**base, output="", scores=scores, metadata=dict(row.metadata), error=NO_RESULT)
            )
            continue
        ok = [r for r in found if not r.get("error")]
        names = list(dict.fromkeys(name for r in found for name in (r.get("scores") or {})))
        scores = {
            name: mean_or_none(
                float(v) for r in found if (v := (r.get("scores") or {}).get(name)) is not None
            )
            for name in names
        }
        metadata = dict(found[0].get("metadata") or row.metadata)
        scorer_errors = {k: v for r in found for k, v in (r.get("scorer_errors") or {}).items()}
        if scorer_errors:
            metadata["scorer_errors"] = scorer_errors
        if trials > 1 or len(found) > 1:
            metadata.pop("trial", None)
            metadata["trials"] = [
                {
                    "trial": r.get("trial"),
                    "output": r.get("output"),
                    "error": r.get("error"),
                    "scores": r.get("scores"),
                }
                for r in found
            ]
        missing = max(0, trials - len(found))
        if missing:
            metadata["missing_trials"] = missing
        built.append(
            EvalRow(
                **base,
                output=(ok[0] if ok else found[0]).get("output") or "",
                scores=scores,
                metadata=metadata,
                error=None if ok else (found[0].get("error") or NO_RESULT),
            )
        )
    return built
