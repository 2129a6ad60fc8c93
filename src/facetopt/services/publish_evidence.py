"""The evidence a prompt needs before it is published: its exact text (by hash) evaluated on the
validation split of a dataset with real labels, by a real facet model, and, when a comparison
made it a candidate, kept (KEEP) by the newest such comparison.

Once a dataset holds a test split for the facet, validation is no longer the last word: the
published hash must be the one evaluated on test (the final check), by a real model on real labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import EvalRow, ExperimentRecord
from facetopt.facets.selection import TEST_SPLIT
from facetopt.services.experiments import Experiments, split_covers

SIMULATED_LABEL_PREFIX = "simulated"
EvidenceStatus = Literal["evaluated", "simulated_only", "never_evaluated", "not_kept", "not_on_test"]


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
    test_experiments: list[str] = Field(default_factory=list)  # on test, with real labels
    test_datasets: list[str] = Field(default_factory=list)  # datasets holding a test split of the facet
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
    records = experiments.registry() if offline else experiments.records()
    real, simulated, unread = _runs_on(experiments, records, facet_name, prompt_sha, "validation", offline)
    test_datasets = datasets_with_test(experiments, records, facet_name)
    decision = decision_for(facet_name, prompt_sha) if decision_for else None
    eval_hint = f"facetopt eval --split validation --facet {facet_name}"
    on_test: list[str] = []
    simulated_test: list[str] = []
    if test_datasets:
        on_test, simulated_test, unread_test = _runs_on(
            experiments, records, facet_name, prompt_sha, "test", offline
        )
        unread += [u for u in unread_test if u not in unread]
    if test_datasets and not on_test:
        status: EvidenceStatus = "not_on_test"
        named = ", ".join(repr(d) for d in test_datasets)
        message = (
            f"dataset {named} holds a test split of {facet_name}, and prompt {prompt_sha[:12]} was not "
            f"evaluated on it with real labels"
            + (f" (only simulated: {', '.join(simulated_test)})" if simulated_test else "")
            + f": once the prompt is final, run `facetopt eval --split test --facet {facet_name}`"
        )
    elif not real and not on_test:
        if simulated:
            status = "simulated_only"
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
        message = (
            f"evaluated on test with real labels in {', '.join(on_test)}"
            if on_test
            else f"evaluated on validation with real labels in {', '.join(real)}"
        )
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
        test_experiments=on_test,
        test_datasets=test_datasets,
        decision=decision,
    )


def datasets_with_test(experiments: Experiments, records: list[ExperimentRecord], facet: str) -> list[str]:
    """Datasets known to hold a test split of the facet: a run saw test rows of it in the dataset,
    or a look at its test rows was recorded."""
    wanted = facet.casefold()
    found = {r.dataset for r in records if any(f.casefold() == wanted for f in (r.test_facets or []))}
    if experiments.store is not None:
        found |= {t.dataset for t in experiments.store.test_touches() if t.facet_name.casefold() == wanted}
    return sorted(found)


def _runs_on(
    experiments: Experiments, records: list[ExperimentRecord], facet: str, sha: str, split: str, offline: bool
) -> tuple[list[str], list[str], list[str]]:
    """(real, simulated, unread) ids of runs that scored this exact prompt on `split` rows of the
    facet; `offline` leaves unread the runs whose rows are only on Braintrust (offline, `records`
    is the registry alone, since on Braintrust listing the project's experiments is a request)."""
    real: list[str] = []
    simulated: list[str] = []
    unread: list[str] = []
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        if _hash_of(record, facet) != sha or not _reads(record.split, split) or not record.complete:
            continue
        stored = experiments.store is not None and experiments.store.has_experiment_rows(record.experiment_id)
        if offline and not stored:
            unread.append(record.experiment_id)
            continue
        rows = [r for r in experiments.rows(record) if _is_row_of(r, facet, split)]
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


def _reads(run_split: str | None, split: str) -> bool:
    """A run read `split`: the test split only when named (no split asked means train and validation)."""
    if split == TEST_SPLIT:
        return bool(run_split) and TEST_SPLIT in {s.strip().casefold() for s in (run_split or "").split(",")}
    return split_covers(run_split, split)


def _is_row_of(row: EvalRow, facet: str, wanted: str) -> bool:
    split = row.split or row.metadata.get("split")
    return row.facet_name.casefold() == facet.casefold() and split == wanted and row.error is None


def _real_label(row: EvalRow) -> bool:
    model = str(row.metadata.get("ground_truth_model") or "")
    return bool(model) and not model.startswith(SIMULATED_LABEL_PREFIX)
