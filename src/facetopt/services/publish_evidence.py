"""The evidence a prompt needs before it is published: its exact text (by hash) evaluated on the
validation split of a dataset with real labels, by a real facet model, and, when a comparison
made it a candidate, kept (KEEP) by the newest such comparison."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import EvalRow, ExperimentRecord
from facetopt.services.experiments import Experiments, split_covers

SIMULATED_LABEL_PREFIX = "simulated"
EvidenceStatus = Literal["evaluated", "simulated_only", "never_evaluated", "not_kept"]


class Decision(BaseModel):
    """The newest recorded comparison in which a prompt hash was the candidate."""

    verdict: str
    baseline_experiment_id: str
    candidate_experiment_id: str
    target: str | None = None


class FacetEvidence(BaseModel):
    facet_name: str
    prompt_sha256: str
    status: EvidenceStatus
    message: str
    validation_experiments: list[str] = Field(default_factory=list)  # evaluated with real labels
    simulated_experiments: list[str] = Field(default_factory=list)
    decision: Decision | None = None

    @property
    def sufficient(self) -> bool:
        return self.status == "evaluated"


DecisionLookup = Callable[[str, str], Decision | None]  # (facet, prompt hash) -> newest decision


def recorded_decisions(store: LocalStore | None) -> DecisionLookup:
    """The newest comparison on validation in which the prompt was the candidate of a change
    (a compare of a prompt against itself decides nothing about it)."""
    from facetopt.services.decisions import prompt_decisions

    def newest(facet: str, sha: str) -> Decision | None:
        for found in prompt_decisions(store, sha, facet, "validation"):
            if found.baseline_sha != sha:
                return Decision(
                    verdict=found.verdict,
                    baseline_experiment_id=found.baseline_experiment_id,
                    candidate_experiment_id=found.candidate_experiment_id,
                    target=found.target,
                )
        return None

    return newest


def facet_evidence(
    experiments: Experiments,
    facet_name: str,
    prompt_sha: str,
    decision_for: DecisionLookup | None = None,
    offline: bool = False,
) -> FacetEvidence:
    real, simulated, unread = _validation_runs(experiments, facet_name, prompt_sha, offline)
    decision = decision_for(facet_name, prompt_sha) if decision_for else None
    eval_hint = f"facetopt eval --split validation --facet {facet_name}"
    if not real:
        if simulated:
            status: EvidenceStatus = "simulated_only"
            message = (
                f"prompt {prompt_sha[:12]} was evaluated on validation only with SIMULATED labels or a "
                f"simulated facet model ({', '.join(simulated)}): run `{eval_hint}` on a real dataset"
            )
        else:
            status = "never_evaluated"
            message = f"prompt {prompt_sha[:12]} was never evaluated on a validation split: run `{eval_hint}`"
    elif decision is not None and decision.verdict != "KEEP":
        status = "not_kept"
        message = (
            f"the newest comparison with prompt {prompt_sha[:12]} as the candidate "
            f"({decision.baseline_experiment_id} -> {decision.candidate_experiment_id}) said {decision.verdict}"
        )
    else:
        status = "evaluated"
        message = f"evaluated on validation with real labels in {', '.join(real)}"
        if decision is not None:
            message += f"; kept by the comparison {decision.baseline_experiment_id} -> {decision.candidate_experiment_id}"
    if unread:
        message += (
            f" ({len(unread)} Braintrust experiment(s) with this prompt not read: --dry-run contacts nothing)"
        )
    return FacetEvidence(
        facet_name=facet_name,
        prompt_sha256=prompt_sha,
        status=status,
        message=message,
        validation_experiments=real,
        simulated_experiments=simulated,
        decision=decision,
    )


def _validation_runs(
    experiments: Experiments, facet: str, sha: str, offline: bool
) -> tuple[list[str], list[str], list[str]]:
    """(real, simulated, unread) ids of runs that scored this exact prompt on validation rows of
    the facet; `offline` leaves unread the runs whose rows are only on Braintrust."""
    real: list[str] = []
    simulated: list[str] = []
    unread: list[str] = []
    # offline: the registry alone, since on Braintrust listing the project's experiments is a request
    records = experiments.registry() if offline else experiments.records()
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        if _hash_of(record, facet) != sha or not split_covers(record.split, "validation"):
            continue
        stored = experiments.store is not None and experiments.store.has_experiment_rows(record.experiment_id)
        if offline and not stored:
            unread.append(record.experiment_id)
            continue
        rows = [r for r in experiments.rows(record) if _is_validation_row_of(r, facet)]
        if not rows:
            continue
        if "facet_model" in record.simulated_roles or not any(_real_label(r) for r in rows):
            simulated.append(record.experiment_id)
        else:
            real.append(record.experiment_id)
    return real, simulated, unread


def _hash_of(record: ExperimentRecord, facet: str) -> str | None:
    wanted = facet.casefold()
    return next((h for name, h in record.prompt_hashes.items() if name.casefold() == wanted), None)


def _is_validation_row_of(row: EvalRow, facet: str) -> bool:
    split = row.split or row.metadata.get("split")
    return row.facet_name.casefold() == facet.casefold() and split == "validation" and row.error is None


def _real_label(row: EvalRow) -> bool:
    model = str(row.metadata.get("ground_truth_model") or "")
    return bool(model) and not model.startswith(SIMULATED_LABEL_PREFIX)
