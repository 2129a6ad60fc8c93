"""Compare two experiments' paired rows and decide KEEP / REJECT / INCONCLUSIVE.

Rules (docs/commands.md, "facetopt compare"): each target judges one score;
guards are the opposite error direction(s) and Factuality. A guard breaks when its delta
is below -tolerance. KEEP needs the target's 95% bootstrap interval above zero and no broken
guard; REJECT when that interval is below zero or a guard breaks; otherwise INCONCLUSIVE,
with the rows still needed from the McNemar sample-size approximation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from facetopt.domain.experiments import SCORE_NAMES, EvalRow, FacetComparison, MetricDelta, Verdict
from facetopt.errors import InputError
from facetopt.facets.metrics import (
    OVERALL,
    Outcome,
    decision_outcome,
    group_by_facet,
    precision_from_counts,
    row_score,
)
from facetopt.facets.stats import (
    categorical_bootstrap_ci,
    mcnemar_exact_p,
    mcnemar_rows_needed,
    paired_bootstrap_ci,
)

PRECISION = "precision"
# A delta of exactly -tolerance (e.g. one row lost out of 50) must not break a guard by rounding.
_ROUNDING_SLACK = 1e-9


@dataclass(frozen=True)
class TargetRule:
    metric: str  # the score whose interval decides the verdict
    guards: tuple[str, ...]  # scores that must not drop by more than the tolerance
    shown_beside: tuple[str, ...] = ()  # reported next to the target, not judged


TARGETS: dict[str, TargetRule] = {
    "balanced": TargetRule(
        "binary_decision_match", ("positive_recall", "negative_specificity", "Factuality")
    ),
    "precision": TargetRule("negative_specificity", ("positive_recall", "Factuality"), (PRECISION,)),
    "recall": TargetRule("positive_recall", ("negative_specificity", "Factuality")),
}


def target_rule(target: str) -> TargetRule:
    rule = TARGETS.get(target.lower())
    if rule is None:
        raise InputError(f"unknown compare target {target!r}", hint=f"use one of: {', '.join(TARGETS)}")
    return rule


def compare_rows(
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    facet_name: str,
    target: str = "balanced",
    tolerance: float = 0.02,
    iterations: int = 2000,
    seed: int = 0,
) -> FacetComparison:
    """Compare rows already paired (same order, same ids) and give a verdict for `target`."""
    rule = target_rule(target)
    if tolerance < 0:
        raise InputError(
            f"tolerance must not be negative (got {tolerance})", hint="for example --tolerance 0.02"
        )
    _check_paired(baseline, candidate)

    deltas = {name: _score_delta(baseline, candidate, name, iterations, seed) for name in SCORE_NAMES}
    deltas[PRECISION] = _precision_delta(baseline, candidate, iterations, seed)
    match_b, match_c = _discordance(baseline, candidate, "binary_decision_match")
    match_pairs = deltas["binary_decision_match"].n

    verdict, reasons, rows_needed = _decide(rule, deltas, baseline, candidate, tolerance)
    return FacetComparison(
        facet_name=facet_name,
        paired_rows=len(baseline),
        deltas=list(deltas.values()),
        mcnemar_b=match_b,
        mcnemar_c=match_c,
        mcnemar_p=mcnemar_exact_p(match_b, match_c) if match_pairs else None,
        verdict=verdict,
        reasons=reasons,
        rows_needed=rows_needed,
    )


def compare_overall(
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    target: str = "balanced",
    tolerance: float = 0.02,
    iterations: int = 2000,
    seed: int = 0,
) -> FacetComparison:
    """`compare_rows` over all facets together, labelled "overall"."""
    return compare_rows(baseline, candidate, OVERALL, target, tolerance, iterations, seed)


def compare_by_facet(
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    target: str = "balanced",
    tolerance: float = 0.02,
    iterations: int = 2000,
    seed: int = 0,
) -> list[FacetComparison]:
    """One comparison per facet of the baseline rows (sorted by name), then "overall"."""
    _check_paired(baseline, candidate)
    comparisons = []
    for name, facet_rows in group_by_facet(baseline).items():
        key = name.casefold()
        paired = [
            other for row, other in zip(baseline, candidate, strict=True) if row.facet_name.casefold() == key
        ]
        comparisons.append(compare_rows(facet_rows, paired, name, target, tolerance, iterations, seed))
    comparisons.append(compare_overall(baseline, candidate, target, tolerance, iterations, seed))
    return comparisons


def _check_paired(baseline: Sequence[EvalRow], candidate: Sequence[EvalRow]) -> None:
    if len(baseline) != len(candidate):
        raise ValueError(f"unpaired rows: {len(baseline)} baseline vs {len(candidate)} candidate")
    for left, right in zip(baseline, candidate, strict=True):
        if left.id != right.id:
            raise ValueError(f"unpaired rows: baseline {left.id!r} next to candidate {right.id!r}")


def _score_pairs(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], name: str
) -> list[tuple[float, float]]:
    pairs = []
    for left, right in zip(baseline, candidate, strict=True):
        before, after = row_score(left, name), row_score(right, name)
        if before is not None and after is not None:
            pairs.append((before, after))
    return pairs


def _score_delta(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], name: str, iterations: int, seed: int
) -> MetricDelta:
    pairs = _score_pairs(baseline, candidate, name)
    if not pairs:
        return MetricDelta(metric=name)
    before = [pair[0] for pair in pairs]
    after = [pair[1] for pair in pairs]
    before_mean = sum(before) / len(pairs)
    after_mean = sum(after) / len(pairs)
    low, high = paired_bootstrap_ci(before, after, iterations=iterations, seed=seed)
    return MetricDelta(
        metric=name,
        baseline=before_mean,
        candidate=after_mean,
        delta=after_mean - before_mean,
        ci_low=low,
        ci_high=high,
        n=len(pairs),
    )


def _precision_delta(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], iterations: int, seed: int
) -> MetricDelta:
    """Precision TP/(TP+FP) on rows where both sides have a decision outcome; the interval
    resamples the paired outcome types."""
    paired_outcomes: Counter[tuple[Outcome, Outcome]] = Counter()
    for left, right in zip(baseline, candidate, strict=True):
        left_outcome, right_outcome = decision_outcome(left), decision_outcome(right)
        if left_outcome is not None and right_outcome is not None:
            paired_outcomes[(left_outcome, right_outcome)] += 1
    if not paired_outcomes:
        return MetricDelta(metric=PRECISION)

    def side_precision(counts: Mapping[tuple[Outcome, Outcome], int], side: int) -> float | None:
        tp = sum(count for outcomes, count in counts.items() if outcomes[side] == "tp")
        fp = sum(count for outcomes, count in counts.items() if outcomes[side] == "fp")
        return precision_from_counts(tp, fp)

    def precision_change(counts: Mapping[tuple[Outcome, Outcome], int]) -> float | None:
        before, after = side_precision(counts, 0), side_precision(counts, 1)
        return None if before is None or after is None else after - before

    before, after = side_precision(paired_outcomes, 0), side_precision(paired_outcomes, 1)
    interval = None
    if before is not None and after is not None:
        interval = categorical_bootstrap_ci(
            paired_outcomes, precision_change, iterations=iterations, seed=seed
        )
    return MetricDelta(
        metric=PRECISION,
        baseline=before,
        candidate=after,
        delta=None if before is None or after is None else after - before,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        n=sum(paired_outcomes.values()),
    )


def _discordance(baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], name: str) -> tuple[int, int]:
    """(b, c): paired rows where only the baseline scored higher, and where only the candidate did."""
    pairs = _score_pairs(baseline, candidate, name)
    only_baseline = sum(1 for before, after in pairs if before > after)
    only_candidate = sum(1 for before, after in pairs if after > before)
    return only_baseline, only_candidate


def _describe(delta: MetricDelta) -> str:
    if delta.delta is None:
        return f"{delta.metric} not scored on both sides"
    text = f"{delta.metric} {delta.delta:+.3f}"
    if delta.ci_low is not None and delta.ci_high is not None:
        text += f" [{delta.ci_low:.3f}, {delta.ci_high:.3f}]"
    return text


def _decide(
    rule: TargetRule,
    deltas: Mapping[str, MetricDelta],
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    tolerance: float,
) -> tuple[Verdict, list[str], int | None]:
    judged = deltas[rule.metric]
    reasons = [_describe(judged)] + [_describe(deltas[name]) for name in rule.shown_beside]

    broken = False
    for name in rule.guards:
        guard = deltas[name]
        if guard.delta is None:
            reasons.append(f"guard {name} not scored on both sides")
        elif guard.delta < -tolerance - _ROUNDING_SLACK:
            broken = True
            reasons.append(f"guard {name} {guard.delta:+.3f} below -{tolerance:g}")

    if judged.ci_high is not None and judged.ci_high < 0:
        reasons.append(f"{rule.metric} interval below zero")
        return "REJECT", reasons, None
    if broken:
        return "REJECT", reasons, None
    if judged.ci_low is None or judged.ci_high is None:
        return "INCONCLUSIVE", reasons, None
    if judged.ci_low > 0:
        reasons.append(f"{rule.metric} interval above zero, no guard broken")
        return "KEEP", reasons, None
    b, c = _discordance(baseline, candidate, rule.metric)
    rows_needed = mcnemar_rows_needed(b, c, judged.n)
    if rows_needed is None:
        reasons.append(f"no difference in {rule.metric} on {judged.n} paired rows")
    else:
        reasons.append(f"{rule.metric} interval includes zero: about {rows_needed} more paired rows needed")
    return "INCONCLUSIVE", reasons, rows_needed
