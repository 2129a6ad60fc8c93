"""`facetopt dataset upload`: (re)upload a run's dataset_rows.jsonl, and prove every row arrived.

This is how rows kept after a failed upload reach Braintrust, and how a dataset built on the
local backend is promoted to Braintrust.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from facetopt.domain.dataset import DatasetRow
from facetopt.errors import ConfigError, InputError, NotFoundError
from facetopt.services.backends import Backend, open_backend
from facetopt.services.dataset.create import SIMULATED_PREFIX
from facetopt.services.dataset.placement import Settled, read_ledger, remember_written, settle_rows
from facetopt.settings import Settings

ROWS_FILE = "dataset_rows.jsonl"


class DatasetUploadSummary(BaseModel):
    run_dir: str
    backend: str
    target_org: str | None = None
    target_project: str
    dataset: str
    dataset_id: str | None = None
    rows: int = 0  # rows in the run's dataset_rows.jsonl
    written: int = 0
    verified: int = 0  # read back with the written id and expected
    existing_rows: int = 0  # rows the dataset already held: their split (and a person's label) kept
    kept_reviewed_labels: int = 0
    placed_by_duplicates: int = 0
    placed_by_traces: int = 0
    simulated_rows: int = 0
    warnings: list[str] = Field(default_factory=list)


def find_run_dir(run_dir: Path, output_root: Path) -> Path:
    """The folder as given, else a run id under the output root."""
    for candidate in (run_dir, output_root / run_dir):
        if candidate.is_dir():
            return candidate
    raise NotFoundError(
        f"run folder not found: {run_dir}",
        hint="pass the folder `facetopt dataset create` printed after `artifacts:` "
        "(or a run id under --output-root)",
    )


def read_run_rows(run_dir: Path) -> list[DatasetRow]:
    path = run_dir / ROWS_FILE
    if not path.is_file():
        raise NotFoundError(
            f"no {ROWS_FILE} in {run_dir}",
            hint="that run was a dry run or stopped before labelling; "
            "run `facetopt dataset create` without --dry-run",
        )
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(DatasetRow.model_validate(json.loads(line)))
            except (ValueError, ValidationError) as exc:
                first = str(exc).splitlines()[0]
                raise InputError(
                    f"{path} line {number} is not a dataset row: {first}",
                    hint="the file must hold the rows `facetopt dataset create` wrote, one per line",
                ) from None
    if not rows:
        raise InputError(f"{path} holds no rows", hint="re-run `facetopt dataset create` for that dataset")
    return rows


def _run_summary(run_dir: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _target(flag: str | None, run_value: Any, setting: str | None, name: str, env: str) -> str:
    """The flag, else the run's own target; settings naming another one is refused (naming both)
    rather than silently followed or silently ignored."""
    run = run_value if isinstance(run_value, str) and run_value else None
    if flag:
        return flag
    if run and setting and setting != run:
        raise ConfigError(
            f"the run folder was made for {name.replace('-', ' ')} {run!r}, but the settings name {setting!r} "
            f"({env})",
            hint=f"pass --{name} {run!r} to upload where the run was made for, or --{name} {setting!r} "
            "to put its rows there",
        )
    value = run or setting
    if not value:
        raise ConfigError(
            f"--{name} is required: the run folder's summary.json does not name one",
            hint=f"pass --{name} or set {env}",
        )
    return value


def _simulated(rows: list[DatasetRow]) -> int:
    return sum(str(r.metadata.get("ground_truth_model") or "").startswith(SIMULATED_PREFIX) for r in rows)


def run_dataset_upload(
    settings: Settings,
    *,
    run_dir: Path,
    target_project: str | None,
    dataset: str | None,
    allow_simulated: bool,
    announce: Callable[[str], None],
    backend: Backend | None = None,
) -> DatasetUploadSummary:
    folder = find_run_dir(run_dir, settings.output_root)
    rows = read_run_rows(folder)
    backend = backend if backend is not None else open_backend(settings, announce)
    run = _run_summary(folder)
    summary = DatasetUploadSummary(
        run_dir=str(folder),
        backend=backend.name,
        target_project=_target(
            target_project, run.get("target_project"), settings.target_project,
            "target-project", "FACET_OPTIMIZER_TARGET_PROJECT",
        ),
        dataset=_target(dataset, run.get("dataset"), settings.dataset, "dataset", "FACET_OPTIMIZER_DATASET"),
        rows=len(rows),
        simulated_rows=_simulated(rows),
    )  # fmt: skip
    if summary.simulated_rows:
        if not allow_simulated:
            raise InputError(
                f"{summary.simulated_rows} of {len(rows)} rows in {folder / ROWS_FILE} have SIMULATED labels "
                "(ground_truth_model starts with 'simulated:'): they are not ground truth",
                hint="label with a real model (set FACET_OPTIMIZER_GROUND_TRUTH_API_KEY, OPENAI_API_KEY or "
                "BRAINTRUST_API_KEY and run `facetopt dataset create` again), or pass --allow-simulated",
            )
        summary.warnings.append(
            f"uploading {summary.simulated_rows} rows with SIMULATED labels (--allow-simulated): "
            "not ground truth"
        )
    settled = _settle(settings, backend, summary, rows)
    uploaded = backend.upload_rows(
        summary.target_project,
        summary.dataset,
        settled.rows,
        retry=f"the rows are still in {folder / ROWS_FILE}; run the same `facetopt dataset upload` command again",
    )
    summary.target_org, summary.dataset_id = uploaded.org, uploaded.dataset_id
    summary.written, summary.verified = uploaded.written, uploaded.verified
    noted = remember_written(settings, backend.name, summary.target_project, summary.dataset, settled.rows)
    summary.warnings.extend([noted] if noted else [])
    return summary


def _settle(
    settings: Settings, backend: Backend, summary: DatasetUploadSummary, rows: list[DatasetRow]
) -> Settled:
    """The rows as the dataset may take them: held rows keep their split and a person's label."""
    try:
        target = backend.dataset_rows(summary.target_project, summary.dataset)
    except NotFoundError:
        target = []
    ledger, notes = read_ledger(settings, backend.name, summary.target_project)
    settled = settle_rows(rows, target, ledger, summary.dataset)
    summary.existing_rows, summary.kept_reviewed_labels = settled.existing, settled.kept_reviewed
    summary.placed_by_duplicates, summary.placed_by_traces = len(settled.by_duplicate), len(settled.by_trace)
    given = {r.id: r.split for r in rows}
    moved = sum(1 for r in settled.rows if given.get(r.id) != r.split)
    if moved:
        notes.append(
            f"{moved} row(s) are not in the split the run folder gives them: the dataset already held them "
            "(their split is kept), or a duplicate or the holdout rule placed them"
        )
    summary.warnings.extend(notes + settled.warnings)
    return settled
