"""`facetopt dataset review export|apply`: a person decides the labels the audit doubts.

export: the audit's disagreeing rows (and/or copies of the production output), plus a seeded
random sample of agreeing rows (errors both labellers share are invisible otherwise), as a YAML
file with an empty `decision` per row.

apply: each decided row's `expected` becomes the decision; ids and splits stay, the bucket tag
follows the new label, and the row's metadata records who decided what and when (`review`).
Rows are upserted through the backend and verified by reading back. A row that already holds
the decision (with its human review recorded) is a no-op, so applying a file twice changes
nothing the second time; a row whose `expected` changed since the export and is not the decision
is a conflict and is not overwritten.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from facetopt.clients.review_file import read_review_file, write_review_file
from facetopt.domain.audit import (
    AuditedRow,
    ReviewApplyReport,
    ReviewChange,
    ReviewConflict,
    ReviewEntry,
    ReviewExport,
)
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import InputError
from facetopt.facets.data.text import bucket_of
from facetopt.facets.decide.agreement import expected_sha256
from facetopt.services.backends import Backend, open_backend
from facetopt.services.dataset.audit import audit_dataset
from facetopt.services.dataset.placement import remember_written
from facetopt.services.dataset.recorded_audit import recorded_audit
from facetopt.services.progress import Progress
from facetopt.settings import Settings

Only = Literal["disagreements", "copies", "all"]
ONLY_CHOICES = ("disagreements", "copies", "all")
EXCERPT_CHARS = 1500
BUCKET_TAGS = ("positive", "negative")
REVIEWER = "human"


def _excerpt(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS].rstrip() + f"\n[... {len(text) - EXCERPT_CHARS} more characters]"


def choose_entries(
    rows: list[AuditedRow], only: str, sample_agreeing: int, seed: int
) -> list[tuple[AuditedRow, str]]:
    """(row, why it is in the file), disagreements and copies first, then the agreeing sample."""
    if only not in ONLY_CHOICES:
        raise InputError(f"unknown --only {only!r}", hint="use --only disagreements, copies or all")
    if sample_agreeing < 0:
        raise InputError("--sample-agreeing must be zero or more", hint="0 leaves the agreeing rows out")
    if only == "all":
        return [(r, _reason(r) or "agreeing") for r in rows]
    picked = [
        (r, _reason(r)) for r in rows if (r.disagrees if only == "disagreements" else r.copies_production)
    ]
    agreeing = sorted(
        (r for r in rows if r.second_opinion is not None and not r.disagrees and not r.copies_production),
        key=lambda r: r.id,
    )
    sample = random.Random(seed).sample(agreeing, min(sample_agreeing, len(agreeing)))
    return [(r, why) for r, why in picked if why] + [
        (r, "agreeing sample") for r in sorted(sample, key=lambda r: r.id)
    ]


def _reason(row: AuditedRow) -> str:
    reasons = []
    if row.decision_agrees is False:
        reasons.append("decision disagreement")
    elif row.label_agrees is False:
        reasons.append("sentiment label disagreement")
    if row.copies_production:
        reasons.append("copies the production output")
    return ", ".join(reasons)


def export_review(
    settings: Settings,
    path: Path,
    *,
    facet: str | None = None,
    split: str | None = None,
    only: str = "disagreements",
    sample_agreeing: int = 10,
    seed: int = 0,
    progress: Progress | None = None,
    announce: Callable[[str], None] | None = None,
    backend: Backend | None = None,
) -> ReviewExport:
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a folder", hint="pass a file name, e.g. review.yaml")
    backend = backend if backend is not None else open_backend(settings, announce)
    project = settings.require("target_project", "--target-project", "FACET_OPTIMIZER_TARGET_PROJECT")
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    all_rows = backend.dataset_rows(project, dataset, must_exist=True)
    # a recorded audit is reused only where no test row is read: a look at test is always recorded anew
    reads_test = (split or "").strip().lower() in ("test", "all")
    outcome = (
        None
        if reads_test
        else recorded_audit(settings.output_root, backend.name, project, dataset, all_rows, facet, split)
    )
    if outcome is not None:
        if announce is not None:
            announce(f"using the audit recorded in {outcome.report.run_dir} (no model asked again)")
    else:
        outcome = audit_dataset(
            settings,
            facet=facet,
            split=split,
            seed=seed,
            progress=progress,
            announce=announce,
            backend=backend,
            command="dataset review export",
            all_rows=all_rows,
        )
    report = outcome.report
    chosen = choose_entries(outcome.rows, only, sample_agreeing, seed)
    entries = []
    for row, why in chosen:
        source = outcome.dataset_rows[row.id]
        entries.append(
            {
                "id": row.id,
                "facet_name": row.facet_name,
                "split": row.split,
                "reason": why,
                "permalink": row.permalink,
                "trace_excerpt": _excerpt(str(source.input.get("preprocessed_text") or "")),
                "production_output": row.production_output,
                "expected": row.expected,
                "expected_sha256": expected_sha256(row.expected),
                "second_opinion": row.second_opinion,
                "decision": None,
                "new_value": None,
            }
        )
    header = {
        "dataset": report.dataset,
        "target_project": report.target_project,
        "backend": report.backend,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "audit": f"{report.kind} ({report.second_model}, {report.second_endpoint})",
    }
    write_review_file(path, header, entries)
    reasons = [w for _, w in chosen]
    return ReviewExport(
        path=str(path),
        backend=report.backend,
        target_project=report.target_project,
        dataset=report.dataset,
        entries=len(entries),
        disagreements=sum("disagreement" in w for w in reasons),
        copies=sum("copies" in w for w in reasons),
        agreeing_sample=sum(w == "agreeing sample" for w in reasons),
        audit_kind=report.kind,
        warnings=report.warnings,
    )


def parse_entries(path: Path, raw: list[dict[str, Any]]) -> list[ReviewEntry]:
    """Validated entries; one InputError naming every bad entry before anything is written."""
    entries, problems = [], []
    for number, item in enumerate(raw, start=1):
        raw_decision = item.get("decision")
        decision = raw_decision.strip().lower() if isinstance(raw_decision, str) else raw_decision
        decision = decision or None
        new_value = item.get("new_value")
        new_value = str(new_value).strip() if new_value is not None and str(new_value).strip() else None
        where = f"entry {number} ({item.get('id')})"
        if decision not in (None, "keep", "second", "new"):
            problems.append(f"{where}: decision {decision!r} is not keep, second or new")
            continue
        if decision == "new" and new_value is None:
            problems.append(f"{where}: decision new needs a `new_value`")
            continue
        if decision == "second" and not str(item.get("second_opinion") or "").strip():
            problems.append(f"{where}: decision second, but the row has no second opinion")
            continue
        try:
            entries.append(
                ReviewEntry(
                    id=str(item["id"]),
                    facet_name=str(item.get("facet_name") or ""),
                    split=item.get("split"),
                    reason=str(item.get("reason") or ""),
                    expected=str(item.get("expected") or ""),
                    expected_sha256=str(item.get("expected_sha256") or ""),
                    second_opinion=item.get("second_opinion"),
                    decision=decision,
                    new_value=new_value,
                )
            )
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(
            f"{path}: {'; '.join(problems[:3])}{more}",
            hint="set decision to keep, second or new (with new_value), or leave it empty; nothing was written",
        )
    return entries


def decided_value(entry: ReviewEntry) -> str:
    if entry.decision == "second":
        return str(entry.second_opinion).strip()
    if entry.decision == "new":
        return str(entry.new_value)
    return entry.expected


def reviewed_row(row: DatasetRow, entry: ReviewEntry, value: str, when: str, file_name: str) -> DatasetRow:
    """The row with its new expected, its bucket tag following the label, and the review recorded."""
    metadata = dict(row.metadata)
    if isinstance(metadata.get("review"), dict):
        metadata["review_history"] = [*list(metadata.get("review_history") or []), metadata["review"]]
    metadata["review"] = {
        "decided_by": REVIEWER,
        "decision": entry.decision,
        "expected": value,
        "previous_expected": row.expected,
        "decided_at": when,
        "review_file": file_name,
    }
    bucket = bucket_of(value)
    tags = [bucket if tag in BUCKET_TAGS else tag for tag in row.tags]
    return row.model_copy(update={"expected": value, "metadata": metadata, "tags": tags})


def already_reviewed(row: DatasetRow, value: str) -> bool:
    review = row.metadata.get("review")
    return (
        isinstance(review, dict) and review.get("decided_by") == REVIEWER and review.get("expected") == value
    )


def apply_review(
    settings: Settings,
    path: Path,
    *,
    dry_run: bool = False,
    announce: Callable[[str], None] | None = None,
    backend: Backend | None = None,
) -> ReviewApplyReport:
    header, raw = read_review_file(path)
    entries = parse_entries(path, raw)
    project = _scope(path, "target project", header.get("target_project"), settings.target_project)
    dataset = _scope(path, "dataset", header.get("dataset"), settings.dataset)
    if not project or not dataset:
        raise InputError(
            f"{path} names no dataset", hint="pass --target-project and --dataset, or re-export the file"
        )
    if backend is None:
        if settings.backend is None and header.get("backend") in ("local", "braintrust"):
            settings = settings.model_copy(update={"backend": header["backend"]})
        backend = open_backend(settings, announce)
    report = ReviewApplyReport(
        path=str(path), backend=backend.name, target_project=project, dataset=dataset, dry_run=dry_run
    )
    report.entries = len(entries)
    decided = [e for e in entries if e.decision is not None]
    report.undecided = len(entries) - len(decided)
    current = {r.id: r for r in backend.dataset_rows(project, dataset, must_exist=True)} if decided else {}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    writes: list[DatasetRow] = []
    for entry in decided:
        row = current.get(entry.id)
        if row is None:
            report.conflicts.append(ReviewConflict(id=entry.id, reason="the row is no longer in the dataset"))
            continue
        value = decided_value(entry)
        if row.expected == value and already_reviewed(row, value):
            report.unchanged += 1
            continue
        if row.expected != value and expected_sha256(row.expected) != entry.expected_sha256:
            report.conflicts.append(
                ReviewConflict(
                    id=entry.id,
                    reason="its expected changed since the export and is not the decision: not overwritten",
                    exported=entry.expected_sha256[:12],
                    current=expected_sha256(row.expected)[:12],
                )
            )
            continue
        writes.append(reviewed_row(row, entry, value, when, path.name))
        if row.expected == value:
            report.confirmed += 1
        else:
            report.changed.append(
                ReviewChange(
                    id=row.id,
                    facet_name=row.facet_name,
                    split=row.split,
                    decision=entry.decision or "keep",
                    before=row.expected,
                    after=value,
                    bucket_before=bucket_of(row.expected),
                    bucket_after=bucket_of(value),
                )
            )
    if report.conflicts:
        report.warnings.append(
            f"{len(report.conflicts)} rows changed since the export and were left as they are: "
            "export a fresh review file for them"
        )
    if writes and not dry_run:
        uploaded = backend.upload_rows(
            project, dataset, writes, retry=f"apply the file again: `facetopt dataset review apply {path}`"
        )
        report.written, report.verified = uploaded.written, uploaded.verified
        noted = remember_written(settings, backend.name, project, dataset, writes)
        report.warnings.extend([noted] if noted else [])
    return report


def _scope(path: Path, what: str, exported: object, configured: str | None) -> str:
    """The file's own dataset (or project); settings naming another are refused: a decision about
    a row of one dataset says nothing about a row of another."""
    mine = str(exported or "")
    if mine and configured and configured != mine:
        flag = "--dataset" if what == "dataset" else "--target-project"
        raise InputError(
            f"{path} was exported from {what} {mine!r}, but the settings name {configured!r}: nothing was written",
            hint=f"apply it to {mine!r} (pass {flag} {mine!r}, or unset the setting), or export a review "
            f"file from {configured!r}",
        )
    return mine or configured or ""
