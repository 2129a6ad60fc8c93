"""The evidence a prompt needs before it is published: its exact text (by hash) evaluated with real
labels by a real facet model, and the newest comparison with it as the candidate (against another
prompt version) a KEEP; a prompt evaluated but never compared is no evidence.

Where: on validation; once a dataset holds a test split of the facet, on test (the final check):
evaluated on test, and the newest comparison on test a KEEP.

Each refusal carries a hint naming a step that can succeed from where the user stands (the holdout
rule included), or saying that only fresh data or a person's `--force` can settle it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import EvalRow, ExperimentRecord
from facetopt.facets.data.selection import TEST_SPLIT
from facetopt.services.experiments.holdout import ALLOWED_TEST_VERSIONS
from facetopt.services.experiments.registry import Experiments, split_covers

SIMULATED_LABEL_PREFIX = "simulated"
EvidenceStatus = Literal[
    "evaluated", "simulated_only", "never_evaluated", "never_compared", "not_kept", "not_on_test"
]
FORCE = "or a person's `facetopt publish --force`"


class Decision(BaseModel):
    """The newest recorded comparison in which a prompt hash was the candidate."""

    verdict: str
    baseline_experiment_id: str
    candidate_experiment_id: str
    target: str | None = None
    split: str | None = None
    rows_needed: int | None = None


class FacetEvidence(BaseModel):
    facet_name: str
    prompt_sha256: str
    status: EvidenceStatus
    message: str
    hint: str | None = None  # for a refusal: the step that can succeed from here
    split: str = "validation"  # where the evidence must be: test once a dataset holds a test split
    validation_experiments: list[str] = Field(default_factory=list)  # evaluated with real labels
    test_experiments: list[str] = Field(default_factory=list)  # on test, with real labels
    test_datasets: list[str] = Field(default_factory=list)  # datasets holding a test split of the facet
    simulated_experiments: list[str] = Field(default_factory=list)
    decision: Decision | None = None

    @property
    def sufficient(self) -> bool:
        return self.status == "evaluated"

    @property
    def runs(self) -> list[str]:
        """The real runs the evidence rests on: on test once a test split exists, else validation."""
        return self.test_experiments if self.split == TEST_SPLIT else self.validation_experiments


DecisionLookup = Callable[[str, str, str], Decision | None]  # (facet, prompt hash, split) -> newest


def recorded_decisions(store: LocalStore | None) -> DecisionLookup:
    """The newest comparison on the split in which the prompt was the candidate of a change
    (a compare of a prompt against itself decides nothing about it)."""
    from facetopt.services.experiments.decisions import prompt_decisions

    def newest(facet: str, sha: str, split: str) -> Decision | None:
        for found in prompt_decisions(store, sha, facet, split):
            if found.baseline_sha != sha:
                return Decision(
                    verdict=found.verdict,
                    baseline_experiment_id=found.baseline_experiment_id,
                    candidate_experiment_id=found.candidate_experiment_id,
                    target=found.target,
                    split=found.split,
                    rows_needed=_rows_needed(store, found.comparison_id, facet),
                )
        return None

    return newest


def _rows_needed(store: LocalStore | None, comparison_id: str, facet: str) -> int | None:
    if store is None:
        return None
    for record in store.comparisons():
        if record.comparison_id == comparison_id:
            return next(
                (d.rows_needed for d in record.decisions if d.facet_name.casefold() == facet.casefold()), None
            )
    return None


def facet_evidence(
    experiments: Experiments,
    facet_name: str,
    prompt_sha: str,
    decision_for: DecisionLookup | None = None,
) -> FacetEvidence:
    records = experiments.records()
    real, simulated = _runs_on(experiments, records, facet_name, prompt_sha, "validation")
    test_datasets = datasets_with_test(experiments, records, facet_name)
    split = TEST_SPLIT if test_datasets else "validation"
    on_test, simulated_test = (
        _runs_on(experiments, records, facet_name, prompt_sha, TEST_SPLIT) if test_datasets else ([], [])
    )
    evidence = FacetEvidence(
        facet_name=facet_name,
        prompt_sha256=prompt_sha,
        status="evaluated",
        message="",
        split=split,
        validation_experiments=real,
        simulated_experiments=simulated + simulated_test,
        test_experiments=on_test,
        test_datasets=test_datasets,
    )
    short, runs = prompt_sha[:12], on_test if test_datasets else real
    if test_datasets and not on_test:
        named = ", ".join(repr(d) for d in test_datasets)
        evidence.status = "not_on_test"
        evidence.message = (
            f"dataset {named} holds a test split of {facet_name}, and prompt {short} was not evaluated "
            "on it with real labels"
            + (f" (only simulated: {', '.join(simulated_test)})" if simulated_test else "")
        )
        evidence.hint = _test_hint(experiments, test_datasets, facet_name, prompt_sha)
        return evidence
    if not runs:
        eval_step = f"`facetopt eval --split validation --facet {facet_name}`"
        if simulated:
            evidence.status = "simulated_only"
            evidence.message = (
                f"prompt {short} was evaluated on validation only with SIMULATED labels or a simulated "
                f"facet model ({', '.join(simulated)})"
            )
            evidence.hint = (
                f"run {eval_step} on a dataset labelled by a real model, with a real facet model, then "
                "`facetopt compare` it against the baseline (KEEP needed)"
            )
        else:
            evidence.status = "never_evaluated"
            evidence.message = f"prompt {short} was never evaluated on a validation split"
            evidence.hint = f"run {eval_step}, then `facetopt compare` it against the baseline (KEEP needed)"
        return evidence
    decision = decision_for(facet_name, prompt_sha, split) if decision_for else None
    evidence.decision = decision
    where = f"evaluated on {split} with real labels in {', '.join(runs)}"
    if decision is None:
        evidence.status = "never_compared"
        evidence.message = (
            f"prompt {short} was {where}, but never compared as the candidate against another prompt "
            f"version on {split}: an evaluation alone is no evidence"
        )
        evidence.hint = _compare_hint(experiments, records, facet_name, prompt_sha, split, runs[0])
    elif decision.verdict != "KEEP":
        evidence.status = "not_kept"
        evidence.message = (
            f"the newest comparison on {split} with prompt {short} as the candidate "
            f"({decision.baseline_experiment_id} -> {decision.candidate_experiment_id}) said {decision.verdict}"
        )
        evidence.hint = _not_kept_hint(decision, split, facet_name)
    else:
        evidence.message = (
            f"{where}; kept by the comparison {decision.baseline_experiment_id} -> "
            f"{decision.candidate_experiment_id} on {split}"
        )
    return evidence


def _test_hint(experiments: Experiments, datasets: list[str], facet: str, sha: str) -> str:
    """Evaluate on test, unless the holdout rule would refuse it: then only fresh data or --force."""
    touches = experiments.store.test_touches() if experiments.store is not None else []
    for dataset in datasets:
        seen = {
            t.prompt_sha
            for t in touches
            if t.dataset == dataset and t.facet_name.casefold() == facet.casefold()
        }
        if sha in seen or len(seen) < ALLOWED_TEST_VERSIONS:
            return (
                f"once the prompt is final, run `facetopt eval --split test --facet {facet}` on {dataset!r}, "
                f"then `facetopt compare <baseline> <candidate> --split test --facet {facet}` (KEEP needed)"
            )
    return (
        f"the test split of {', '.join(repr(d) for d in datasets)} was already read by "
        f"{ALLOWED_TEST_VERSIONS} other prompt versions of {facet} (the holdout rule refuses a third): only "
        f"fresh test data (a new dataset with a test split) {FORCE} can settle it"
    )


def _compare_hint(
    experiments: Experiments,
    records: list[ExperimentRecord],
    facet: str,
    sha: str,
    split: str,
    candidate: str,
) -> str:
    """Name the comparison to run: this prompt's run against the newest real run of another version."""
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        other = _hash_of(record, facet)
        if other is None or other == sha or not _reads(record.split, split):
            continue
        rows = [r for r in experiments.rows(record) if _is_row_of(r, facet, split)]
        if rows and any(_real_label(r) for r in rows) and "facet_model" not in record.simulated_roles:
            return (
                f"run `facetopt compare {record.experiment_id} {candidate} --split {split} --facet {facet}` "
                "(KEEP needed)"
            )
    step = (
        "`facetopt eval --split test` with the baseline prompt"
        if split == TEST_SPLIT
        else (f"`facetopt eval --split validation --facet {facet}` with the baseline prompt")
    )
    return (
        f"no run of another prompt version of {facet} on {split} to compare with: run {step}, then "
        f"`facetopt compare <baseline> {candidate} --split {split} --facet {facet}` (KEEP needed)"
    )


def _not_kept_hint(decision: Decision, split: str, facet: str) -> str:
    if split == TEST_SPLIT:
        return (
            f"the test split gave its verdict ({decision.verdict}) and is not for another try: only fresh "
            f"test data {FORCE} can change it"
        )
    if decision.verdict == "INCONCLUSIVE":
        more = f" (about {decision.rows_needed} paired rows)" if decision.rows_needed else ""
        return (
            f"the comparison needs more validation rows{more}: only fresh data (a larger dataset, then eval "
            f"and compare again) {FORCE} can settle it"
        )
    return (
        f"edit the {facet} prompt and evaluate and compare the new version on validation, or keep "
        "the published prompt; only a person's `facetopt publish --force` publishes this one"
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
    experiments: Experiments, records: list[ExperimentRecord], facet: str, sha: str, split: str
) -> tuple[list[str], list[str]]:
    """(real, simulated) ids of runs that scored this exact prompt on `split` rows of the facet."""
    real: list[str] = []
    simulated: list[str] = []
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        if _hash_of(record, facet) != sha or not _reads(record.split, split) or not record.complete:
            continue
        rows = [r for r in experiments.rows(record) if _is_row_of(r, facet, split)]
        if not rows:
            continue
        if "facet_model" in record.simulated_roles or not any(_real_label(r) for r in rows):
            simulated.append(record.experiment_id)
        else:
            real.append(record.experiment_id)
    return real, simulated


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
