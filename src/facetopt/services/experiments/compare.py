"""`facetopt compare BASELINE CANDIDATE`: paired per-facet deltas, intervals and a verdict."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from pydantic import BaseModel, Field

from facetopt.domain.experiments import EvalRow, ExperimentRecord, FacetComparison
from facetopt.domain.next_steps import NextStep
from facetopt.errors import InputError
from facetopt.facets.data.duplicates import fold_duplicate_pairs
from facetopt.facets.data.selection import TEST_SPLIT
from facetopt.facets.decide.verdict import (
    DEFAULT_GUARD_MARGIN,
    check_guard_margin,
    compare_by_facet,
    resolve_no_guard,
    target_rule,
)
from facetopt.services.experiments.budget import budget_warnings, validation_evals
from facetopt.services.experiments.compare_errors import (
    ErroredRows,
    drop_errored,
    incomplete_warnings,
    refuse_all_errored,
)
from facetopt.services.experiments.holdout import all_statuses
from facetopt.services.experiments.registry import ALL_SPLITS, Experiments, check_facet, filter_rows

BOOTSTRAP_ITERATIONS = 2000


class PromptDiff(BaseModel):
    facet_name: str
    baseline_sha: str | None = None
    candidate_sha: str | None = None
    changed: bool
    diff: str | None = None  # unified diff, baseline to candidate
    note: str | None = None


class CompareReport(BaseModel):
    baseline: ExperimentRecord
    candidate: ExperimentRecord
    target: str
    split: str | None = None
    facet: str | None = None
    guard_margin: float = DEFAULT_GUARD_MARGIN  # how far a guard may fall (--guard-margin, alias --tolerance)
    no_guard: list[str] = Field(default_factory=list)  # guards not checked (--no-guard)
    seed: int
    iterations: int = BOOTSTRAP_ITERATIONS
    paired_rows: int = 0
    baseline_only: int = 0  # rows in the baseline only: left out
    candidate_only: int = 0
    label_changed: int = 0  # rows in both runs whose expected differs between them: left out
    folded_rows: int = 0  # paired rows of a duplicate conversation counted once: left out of the statistics
    errored: ErroredRows = Field(default_factory=ErroredRows)  # errored rows, their pairs left out
    facets: list[FacetComparison] = Field(default_factory=list)
    overall: FacetComparison
    prompt_diffs: list[PromptDiff] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    validation_evals: dict[str, int] = Field(default_factory=dict)  # per facet compared, up to the candidate
    final_check: bool = False  # compared on the test split: the verdict stands, no further iteration
    notes: list[str] = Field(default_factory=list)
    comparison_id: str | None = None  # set once the comparison is recorded in the store
    next_steps: list[NextStep] = Field(default_factory=list)  # what to do now (services/next_steps.py)


def pair_rows(
    baseline: list[EvalRow], candidate: list[EvalRow]
) -> tuple[list[EvalRow], list[EvalRow], int, int]:
    """Rows of both sides with the same dataset row id, in id order, and how many each side had alone."""
    left, right, baseline_only, candidate_only, _ = pair_rows_on_labels(baseline, candidate)
    return left, right, baseline_only, candidate_only


def pair_rows_on_labels(
    baseline: list[EvalRow], candidate: list[EvalRow]
) -> tuple[list[EvalRow], list[EvalRow], int, int, int]:
    """Rows of both sides with the same dataset row id AND the same label (expected hash), in id order;
    then how many each side had alone and how many were left out because the label changed."""
    candidate_by_id = {row.id: row for row in candidate}
    baseline_ids = {row.id for row in baseline}
    common = sorted((row for row in baseline if row.id in candidate_by_id), key=lambda row: row.id)
    paired = [row for row in common if row.expected_sha256 == candidate_by_id[row.id].expected_sha256]
    return (
        paired,
        [candidate_by_id[row.id] for row in paired],
        len(baseline_ids - candidate_by_id.keys()),
        len(candidate_by_id.keys() - baseline_ids),
        len(common) - len(paired),
    )


def statistics_pairs(
    baseline_rows: list[EvalRow], candidate_rows: list[EvalRow]
) -> tuple[list[EvalRow], list[EvalRow]]:
    """The pairs compare's statistics count: same id and label, neither side errored, one pair per
    duplicate conversation (the decision page shows these)."""
    left, right, *_ = pair_rows_on_labels(baseline_rows, candidate_rows)
    left, right, _ = drop_errored(baseline_rows, candidate_rows, left, right)
    left, right, _ = fold_duplicate_pairs(left, right)
    return left, right


def compare_experiments(
    experiments: Experiments,
    baseline_ref: str,
    candidate_ref: str,
    target: str = "balanced",
    split: str | None = "validation",
    facet: str | None = None,
    guard_margin: float = DEFAULT_GUARD_MARGIN,
    seed: int = 0,
    iterations: int = BOOTSTRAP_ITERATIONS,
    model: str | None = None,
    no_guard: Sequence[str] = (),
) -> CompareReport:
    target = target.lower()
    target_rule(target)  # an unknown target fails before any rows are read
    check_guard_margin(guard_margin)
    skipped = resolve_no_guard(target, no_guard)
    baseline = experiments.resolve(baseline_ref, split=split, model=model)
    candidate = experiments.resolve(candidate_ref, split=split, model=model)
    if baseline.experiment_id == candidate.experiment_id:
        raise InputError(
            f"{baseline_ref!r} and {candidate_ref!r} are the same experiment ({baseline.experiment_id})",
            hint="compare two different runs; list them with `facetopt inspect experiments`",
        )
    baseline_all = experiments.rows(baseline)
    candidate_all = experiments.rows(candidate)
    check_facet(baseline_all + candidate_all, facet, baseline)
    baseline_rows, candidate_rows = (
        filter_rows(baseline_all, split, facet),
        filter_rows(candidate_all, split, facet),
    )
    refuse_all_errored("baseline", baseline, baseline_rows, split, facet)
    refuse_all_errored("candidate", candidate, candidate_rows, split, facet)
    left, right, baseline_only, candidate_only, label_changed = pair_rows_on_labels(
        baseline_rows, candidate_rows
    )
    left, right, errored = drop_errored(baseline_rows, candidate_rows, left, right)
    if not left and errored.pairs_left_out:
        raise InputError(
            f"every row the runs have in common errored on one side or the other ({errored.warning()})",
            hint="re-run the eval whose rows errored, then compare again",
        )
    if not left and label_changed:
        raise InputError(
            f"every common row's label changed between {baseline.experiment_name!r} and "
            f"{candidate.experiment_name!r} ({label_changed} rows)",
            hint="re-run the baseline on the new labels, then compare again",
        )
    if not left:
        raise InputError(
            _no_common_rows(baseline, candidate, split), hint=_no_common_rows_hint(baseline, candidate)
        )
    paired_rows = len(left)
    left, right, folded = fold_duplicate_pairs(left, right)
    comparisons = compare_by_facet(left, right, target, guard_margin, iterations, seed, skipped)
    per_facet = [
        c.model_copy(update={"folded_rows": _folded_of(folded, c.facet_name)}) for c in comparisons[:-1]
    ]
    overall = comparisons[-1].model_copy(update={"folded_rows": sum(folded.values())})
    if len(per_facet) == 1:
        overall = per_facet[0].model_copy(update={"facet_name": "overall"})
    final_check = (split or "").strip().casefold() == TEST_SPLIT
    warnings = experiments.notes + incomplete_warnings(baseline, candidate) + [errored.warning() or ""]
    warnings = (
        [w for w in warnings if w]
        + label_change_warnings(label_changed)
        + comparison_warnings(experiments, baseline, candidate, baseline_only, candidate_only, facet, split)
    )
    notes = []
    if final_check:
        per_facet, overall = [_as_final(c) for c in per_facet], _as_final(overall)
        notes.append(FINAL_CHECK_NOTE)
        warnings.extend(holdout_warnings(experiments, candidate, facet))
    return CompareReport(
        baseline=baseline,
        candidate=candidate,
        target=target,
        split=split,
        facet=facet,
        guard_margin=guard_margin,
        no_guard=list(skipped),
        seed=seed,
        iterations=iterations,
        paired_rows=paired_rows,
        baseline_only=baseline_only,
        candidate_only=candidate_only,
        label_changed=label_changed,
        folded_rows=sum(folded.values()),
        errored=errored,
        facets=per_facet,
        overall=overall,
        prompt_diffs=prompt_diffs(experiments, baseline, candidate, facet),
        warnings=warnings,
        validation_evals=validation_evals(
            experiments.validation_runs(candidate.dataset, candidate.created),
            [n for n in candidate.prompt_hashes if not facet or n.casefold() == facet.casefold()],
        ),
        final_check=final_check,
        notes=notes,
    )


FINAL_CHECK_NOTE = (
    "test split: this is the final check of the chosen prompt against the baseline; "
    "the verdict below stands as it is"
)


_MORE_ROWS = re.compile(r";? about \d+ more [^;]*? rows(?: needed)?(?: to (?:settle|assess) it)?")


def _as_final(comparison: FacetComparison) -> FacetComparison:
    """A verdict on test without advice to iterate: no rows-needed estimate, no call for more rows."""
    reasons = [_MORE_ROWS.sub("", r) for r in comparison.reasons]
    return comparison.model_copy(
        update={"rows_needed": None, "rows_needed_by_metric": {}, "reasons": reasons}
    )


def holdout_warnings(experiments: Experiments, candidate: ExperimentRecord, facet: str | None) -> list[str]:
    """Say so when more prompt versions than the baseline and the final candidate read the test split."""
    return [
        f"{status.describe()}: more than the baseline and one final candidate, so this check is no longer "
        "a clean holdout"
        for status in all_statuses(experiments.store)
        if status.overused
        and status.dataset == candidate.dataset
        and status.dataset_project == (candidate.dataset_project or "")
        and (not facet or status.facet_name.casefold() == facet.casefold())
    ]


def label_change_warnings(label_changed: int) -> list[str]:
    if not label_changed:
        return []
    return [
        f"{label_changed} rows were left out because their label (expected) changed between the runs; "
        "re-run the baseline to compare on the new labels"
    ]


def _no_common_rows(baseline: ExperimentRecord, candidate: ExperimentRecord, split: str | None) -> str:
    where = f" on split {split}" if split and split != ALL_SPLITS else ""
    if baseline.dataset != candidate.dataset:
        return (
            f"experiments over different datasets ({baseline.dataset!r} and {candidate.dataset!r}) "
            f"have no rows in common{where}"
        )
    return f"{baseline.experiment_name!r} and {candidate.experiment_name!r} have no rows in common{where}"


def _no_common_rows_hint(baseline: ExperimentRecord, candidate: ExperimentRecord) -> str:
    return (
        "compare runs over the same dataset rows (check --split and --facet: "
        f"baseline split {baseline.split or 'all'}, candidate split {candidate.split or 'all'})"
    )


def _folded_of(folded: dict[str, int], facet_name: str) -> int:
    key = facet_name.casefold()
    return sum(count for name, count in folded.items() if name.casefold() == key)


def prompt_diffs(
    experiments: Experiments, baseline: ExperimentRecord, candidate: ExperimentRecord, facet: str | None
) -> list[PromptDiff]:
    """Per facet, the candidate's prompt text against the baseline's, from the prompt history."""
    baseline_hashes = {name.casefold(): (name, sha) for name, sha in baseline.prompt_hashes.items()}
    candidate_hashes = {name.casefold(): (name, sha) for name, sha in candidate.prompt_hashes.items()}
    diffs = []
    for key in sorted(baseline_hashes.keys() | candidate_hashes.keys()):
        if facet and key != facet.casefold():
            continue
        name, before = baseline_hashes.get(key, (None, None))
        other_name, after = candidate_hashes.get(key, (None, None))
        facet_name = name or other_name or key
        if before == after:
            diffs.append(
                PromptDiff(facet_name=facet_name, baseline_sha=before, candidate_sha=after, changed=False)
            )
            continue
        old_text = experiments.prompt_text(before, baseline) if before else ""
        new_text = experiments.prompt_text(after, candidate) if after else ""
        missing = [
            (side, sha, record)
            for side, sha, text, record in (
                ("baseline", before, old_text, baseline),
                ("candidate", after, new_text, candidate),
            )
            if sha and text is None
        ]
        diff = None
        note = None
        if missing:
            note = "prompt diff unavailable: " + "; ".join(_missing_text(*m) for m in missing)
        else:
            diff = "\n".join(  # one diff line per line, whether or not a text ends in a newline
                difflib.unified_diff(
                    (old_text or "").splitlines(),
                    (new_text or "").splitlines(),
                    fromfile=f"baseline {before[:12] if before else '(none)'}",
                    tofile=f"candidate {after[:12] if after else '(none)'}",
                    lineterm="",
                )
            )
        diffs.append(
            PromptDiff(
                facet_name=facet_name,
                baseline_sha=before,
                candidate_sha=after,
                changed=True,
                diff=diff,
                note=note,
            )
        )
    return diffs


def _missing_text(side: str, sha: str, record: ExperimentRecord) -> str:
    if not record.by_facetopt:
        return (
            f"the {side} {record.experiment_name!r} was not logged by facetopt and carries no prompt "
            f"texts; {sha[:12]} is not in this machine's prompt history"
        )
    return (
        f"the text of the {side}'s prompt {sha[:12]} is neither in the prompt history nor in its experiment"
    )


def comparison_warnings(
    experiments: Experiments,
    baseline: ExperimentRecord,
    candidate: ExperimentRecord,
    baseline_only: int,
    candidate_only: int,
    facet: str | None = None,
    split: str | None = "validation",
) -> list[str]:
    warnings = []
    if baseline.model != candidate.model:
        warnings.append(
            f"the runs used different models ({baseline.model} and {candidate.model}): "
            "the deltas mix a model change with any prompt change"
        )
    if (baseline.dataset, baseline.dataset_project) != (candidate.dataset, candidate.dataset_project):
        warnings.append(
            f"the runs used different datasets ({_dataset_label(baseline)} and {_dataset_label(candidate)})"
        )
    changed = sorted(
        key
        for key in baseline.filters.keys() | candidate.filters.keys()
        if baseline.filters.get(key) != candidate.filters.get(key)
    )
    if changed:
        details = "; ".join(
            f"{key}: {baseline.filters.get(key)!r} vs {candidate.filters.get(key)!r}" for key in changed
        )
        warnings.append(f"the runs used different filters ({details})")
    if baseline_only or candidate_only:
        warnings.append(
            f"{baseline_only} baseline-only and {candidate_only} candidate-only rows "
            "were left out of the comparison"
        )
    if (split or "").strip().casefold() != TEST_SPLIT:
        warnings.extend(validation_reuse_warnings(experiments, baseline, candidate, facet))
    return warnings


def validation_reuse_warnings(
    experiments: Experiments, baseline: ExperimentRecord, candidate: ExperimentRecord, facet: str | None
) -> list[str]:
    """The experiment budget of each tuned facet, counting validation evals up to the candidate run.

    Only facets whose prompt changed between the runs are being tuned; when none changed, every facet
    compared is checked."""
    runs = experiments.validation_runs(candidate.dataset, candidate.created)
    facets = {
        name: sha
        for name, sha in candidate.prompt_hashes.items()
        if not facet or name.casefold() == facet.casefold()
    }
    changed = {name: sha for name, sha in facets.items() if baseline.prompt_hashes.get(name) != sha}
    return budget_warnings(validation_evals(runs, changed or facets), candidate.dataset)


def _dataset_label(record: ExperimentRecord) -> str:
    return f"{record.dataset_project}/{record.dataset}" if record.dataset_project else record.dataset
