"""Recorded comparisons: each `facetopt compare` is kept in the store, so later commands can ask
what was decided about a prompt version. A prompt's KEEP is a KEEP for its facet in a comparison
where its hash was the candidate's (and the baseline's hash differed: the prompt was the change).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.clients import artifacts
from facetopt.clients.local.store import LocalStore, StoreBusyError
from facetopt.domain.experiments import ComparisonRecord, FacetComparison, FacetDecision, PromptDecision

if TYPE_CHECKING:
    from facetopt.services.experiments.compare import CompareReport


def _sha_of(hashes: dict[str, str], facet_name: str) -> str | None:
    wanted = facet_name.casefold()
    return next((sha for name, sha in hashes.items() if name.casefold() == wanted), None)


def comparison_record(report: CompareReport, created: datetime | None = None) -> ComparisonRecord:
    baseline, candidate = report.baseline, report.candidate

    def decision(comparison: FacetComparison) -> FacetDecision:
        return FacetDecision(
            facet_name=comparison.facet_name,
            verdict=comparison.verdict,
            rule=comparison.rule,
            paired_rows=comparison.paired_rows,
            baseline_sha=_sha_of(baseline.prompt_hashes, comparison.facet_name),
            candidate_sha=_sha_of(candidate.prompt_hashes, comparison.facet_name),
            rows_needed=comparison.rows_needed,
            unassessed_guards=comparison.unassessed_guards,
        )

    return ComparisonRecord(
        comparison_id=uuid.uuid4().hex,
        created=(created or datetime.now(UTC)).isoformat(),
        backend=candidate.backend,
        dataset=candidate.dataset,
        dataset_project=candidate.dataset_project,
        baseline_experiment_id=baseline.experiment_id,
        baseline_experiment_name=baseline.experiment_name,
        candidate_experiment_id=candidate.experiment_id,
        candidate_experiment_name=candidate.experiment_name,
        baseline_prompt_hashes=baseline.prompt_hashes,
        candidate_prompt_hashes=candidate.prompt_hashes,
        split=report.split,
        facet=report.facet,
        target=report.target,
        tolerance=report.guard_margin,
        guard_margin=report.guard_margin,
        no_guard=report.no_guard,
        folded_rows=report.folded_rows,
        overall_verdict=report.overall.verdict,
        decisions=[decision(c) for c in report.facets]
        + [decision(report.overall).model_copy(update={"baseline_sha": None, "candidate_sha": None})],
    )


def record_comparison(
    store_path: Path, report: CompareReport, warn: Callable[[str], None] | None = None
) -> CompareReport:
    """Keep the comparison in the store (opened briefly for writing); the report with its id.

    A busy store does not lose the verdict: the report says it was not recorded."""
    record = comparison_record(report)
    try:
        with LocalStore(store_path) as store:
            store.add_comparison(record)
    except StoreBusyError as error:
        message = f"this comparison was not recorded: {error.message}"
        if warn is not None:
            warn(message)
        return report.model_copy(update={"warnings": [*report.warnings, message]})
    report = report.model_copy(update={"comparison_id": record.comparison_id})
    try:  # the decision page's data (`facetopt report`); the store's record is what decides
        artifacts.write_json(comparison_path(store_path, record.comparison_id), report)
    except OSError as error:
        message = f"the comparison's data was not kept for `facetopt report`: {error}"
        if warn is not None:
            warn(message)
        report = report.model_copy(update={"warnings": [*report.warnings, message]})
    return report


def comparison_path(store_path: Path, comparison_id: str) -> Path:
    """Where a recorded comparison's whole report is kept, beside the store."""
    return store_path.parent / "comparisons" / f"{comparison_id}.json"


def prompt_decisions(
    store: LocalStore | None, prompt_sha256: str, facet: str | None = None, split: str | None = None
) -> list[PromptDecision]:
    """Every recorded verdict on a facet whose candidate prompt had this hash, newest first;
    only `facet` and only comparisons on `split` when given."""
    if store is None:
        return []
    found = []
    for record in store.comparisons(candidate_sha=prompt_sha256):
        if split is not None and (record.split or "").casefold() != split.casefold():
            continue
        for decision in record.decisions:
            if decision.candidate_sha != prompt_sha256:
                continue
            if facet is not None and decision.facet_name.casefold() != facet.casefold():
                continue
            found.append(
                PromptDecision(
                    prompt_sha256=prompt_sha256,
                    facet_name=decision.facet_name,
                    verdict=decision.verdict,
                    rule=decision.rule,
                    paired_rows=decision.paired_rows,
                    comparison_id=record.comparison_id,
                    created=record.created,
                    target=record.target,
                    split=record.split,
                    dataset=record.dataset,
                    baseline_experiment_id=record.baseline_experiment_id,
                    candidate_experiment_id=record.candidate_experiment_id,
                    baseline_sha=decision.baseline_sha,
                )
            )
    return found


def prompt_kept(
    store: LocalStore | None, prompt_sha256: str, facet: str | None = None, split: str | None = "validation"
) -> PromptDecision | None:
    """The newest KEEP of this prompt version as the change under test (baseline hash different),
    on `split` (validation by default); None when no comparison kept it."""
    return next(
        (
            decision
            for decision in prompt_decisions(store, prompt_sha256, facet, split)
            if decision.verdict == "KEEP" and decision.baseline_sha != prompt_sha256
        ),
        None,
    )
