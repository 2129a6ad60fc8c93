"""What else the output root knows about the compared dataset: its newest label audit and the newest
optimiser run, read from their run folders (absent ones are simply not shown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facetopt.domain.experiments import ExperimentRecord
from facetopt.services.experiments.compare import CompareReport
from facetopt.services.report.model import (
    AuditFacet,
    AuditSummary,
    OptimizeCandidate,
    OptimizeSummary,
)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _newest(folder: Path, name: str) -> list[tuple[Path, dict[str, Any]]]:
    """(path, document) of every `<folder>/<run>/<name>`, newest run first (run ids sort by time)."""
    if not folder.is_dir():
        return []
    found = []
    for run in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        document = _read(run / name)
        if document is not None:
            found.append((run, document))
    return found


def newest_audit(output_root: Path, dataset: str) -> AuditSummary | None:
    for run, audit in _newest(output_root / "audits", "audit.json"):
        if audit.get("dataset") != dataset:
            continue
        facets = [
            AuditFacet(
                facet_name=str(f.get("facet_name")),
                rows=int(f.get("rows") or 0),
                decision_agreement=f.get("decision_agreement"),
                kappa=f.get("kappa"),
                kappa_low=f.get("kappa_low"),
                kappa_high=f.get("kappa_high"),
                note=f.get("kappa_note"),
                warning=f.get("warning"),
            )
            for f in audit.get("facets") or []
            if isinstance(f, dict)
        ]
        return AuditSummary(
            run_dir=str(run),
            split=audit.get("split"),
            second_model=audit.get("second_model"),
            facets=facets,
            warnings=[str(w) for w in audit.get("warnings") or []],
        )
    return None


def newest_optimize(output_root: Path, dataset: str, candidate: ExperimentRecord) -> OptimizeSummary | None:
    """The optimiser run behind the candidate when it was one, else the dataset's newest."""
    runs = [
        (run, doc)
        for run, doc in _newest(output_root / "optimize", "optimize.json")
        if doc.get("dataset") == dataset
    ]
    behind = [pair for pair in runs if pair[1].get("candidate_experiment") == candidate.experiment_id]
    if not (behind or runs):
        return None
    run, doc = (behind or runs)[0]
    winner = doc.get("winner")
    candidates = [
        OptimizeCandidate(
            candidate_id=str(c.get("candidate_id")),
            status=str(c.get("status")),
            hypothesis=c.get("hypothesis"),
            guard_reasons=[str(r) for r in c.get("guard_reasons") or []],
            minibatch_score=c.get("minibatch_score"),
            minibatch_delta=c.get("minibatch_delta"),
            train_score=c.get("train_score"),
            train_delta=c.get("train_delta"),
            validated=winner is not None
            and c.get("candidate_id") == winner
            and bool(doc.get("candidate_experiment")),
        )
        for c in doc.get("candidates") or []
        if isinstance(c, dict)
    ]
    return OptimizeSummary(
        run_id=str(doc.get("run_id") or run.name),
        facet=str(doc.get("facet")),
        target=str(doc.get("target")),
        verdict=doc.get("verdict"),
        baseline_train_score=doc.get("baseline_train_score"),
        candidates=candidates,
    )


def read_compare_report(path: Path) -> CompareReport | None:
    """A recorded comparison's whole report, or None when it was not kept (or cannot be read)."""
    document = _read(path)
    if document is None:
        return None
    try:
        return CompareReport.model_validate(document)
    except ValueError:
        return None
