"""The newest recorded `dataset audit` that still answers a `review export`: the same dataset,
every row the export asks about audited, and each audited label still the dataset's label. Using it
asks no model again (the auditor may be unreachable now, e.g. offline or without its key)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from facetopt.domain.audit import AuditedRow, AuditReport
from facetopt.domain.dataset import DatasetRow
from facetopt.services.dataset.audit import ALL_SPLITS, AuditOutcome, select_rows


def _covers(report: AuditReport, facet: str | None, split: str | None) -> bool:
    if report.sampled is not None:
        return False
    any_split = report.split in (None, ALL_SPLITS)
    same_split = (report.split or ALL_SPLITS) == (split or ALL_SPLITS)
    any_facet = report.facet is None
    same_facet = (report.facet or "").casefold() == (facet or "").casefold()
    return (any_split or same_split) and (any_facet or same_facet)


def _read(folder: Path) -> tuple[AuditReport, list[AuditedRow]] | None:
    try:
        report = AuditReport.model_validate_json((folder / "audit.json").read_text(encoding="utf-8"))
        with (folder / "audited_rows.jsonl").open(encoding="utf-8") as handle:
            rows = [AuditedRow.model_validate(json.loads(line)) for line in handle if line.strip()]
    except (OSError, ValueError, ValidationError):
        return None
    return report, rows


def recorded_audit(
    output_root: Path,
    backend: str,
    project: str,
    dataset: str,
    all_rows: list[DatasetRow],
    facet: str | None,
    split: str | None,
) -> AuditOutcome | None:
    """The newest recorded audit covering the rows `facet` and `split` select, or None."""
    wanted = select_rows(all_rows, facet, split, None, 0)
    current = {r.id: r for r in all_rows}
    folders = sorted((output_root / "audits").glob("*/audit.json"), reverse=True)
    for path in folders:
        found = _read(path.parent)
        if found is None:
            continue
        report, rows = found
        if (report.backend, report.target_project, report.dataset) != (backend, project, dataset):
            continue
        if not _covers(report, facet, split):
            continue
        audited = {r.id: r for r in rows}
        if any(r.id not in audited or audited[r.id].expected != r.expected for r in wanted):
            return None  # the newest audit of this dataset is stale: audit again
        chosen = [audited[r.id] for r in wanted]
        return AuditOutcome(report=report, rows=chosen, dataset_rows={r.id: current[r.id] for r in wanted})
    return None
