"""Compare two experiments' paired rows and decide KEEP / REJECT / INCONCLUSIVE from intervals.

Rules (docs/compare.md; they replace the fixed point-drop guard of the first version):
each target judges one score; guards are the opposite error direction(s) and Factuality.
- fewer than `MIN_PAIRED_ROWS` paired rows for the target's score: INCONCLUSIVE (too few rows);
- the target's 95% interval below zero: REJECT;
- a guard's interval below zero with its point drop past the tolerance: REJECT;
- the target's interval above zero (and no guard shown worse): KEEP;
- otherwise INCONCLUSIVE, with the rows needed (McNemar sample size, power 0.8, alpha 0.05, at
  the observed discordance) for the target and for each guard that may have dropped.
The last reason names the rule that decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from facetopt.domain.experiments import SCORE_NAMES, EvalRow, FacetComparison, MetricDelta, Verdict
from facetopt.errors import InputError
from facetopt.facets.metrics import OVERALL, group_by_facet
from facetopt.facets.paired_deltas import PRECISION, discordance, precision_delta, score_delta, score_pairs
from facetopt.facets.stats import mcnemar_exact_p

MIN_PAIRED_ROWS = 10
# A drop of exactly the tolerance (e.g. one row lost out of 50) is within it, whatever the rounding.
_ROUNDING_SLACK = 1e-9
ROWS_OF = {"positive_recall": "expected-positive", "negative_specificity": "expected-negative"}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    rule: str  # too_few_rows, target_below_zero, guard_worse, target_above_zero or unsettled
    reasons: list[str]
    rows_needed: int | None = None
    rows_needed_by_metric: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetRule:
    metric: str  # the score whose interval decides the verdict
    guards: tuple[str, ...]  # scores that must not be shown worse by more than the tolerance
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

    deltas = {name: score_delta(baseline, candidate, name, iterations, seed) for name in SCORE_NAMES}
    deltas[PRECISION] = precision_delta(baseline, candidate, iterations, seed)
    match_b, match_c = discordance(score_pairs(baseline, candidate, "binary_decision_match"))
    decision = decide(rule, deltas, tolerance)
    return FacetComparison(
        facet_name=facet_name,
        paired_rows=len(baseline),
        deltas=list(deltas.values()),
        mcnemar_b=match_b,
        mcnemar_c=match_c,
        mcnemar_p=mcnemar_exact_p(match_b, match_c) if deltas["binary_decision_match"].n else None,
        verdict=decision.verdict,
        rule=decision.rule,
        reasons=decision.reasons,
        rows_needed=decision.rows_needed,
        rows_needed_by_metric=decision.rows_needed_by_metric,
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


def describe(delta: MetricDelta) -> str:
    if delta.delta is None:
        return f"{delta.metric} not scored on both sides"
    text = f"{delta.metric} {delta.delta:+.3f}"
    if delta.ci_low is not None and delta.ci_high is not None:
        text += f" [{delta.ci_low:.3f}, {delta.ci_high:.3f}]"
    return text + f" on {delta.n} {ROWS_OF.get(delta.metric, 'paired')} rows"


def rows_text(metric: str, rows: int) -> str:
    return f"about {rows} more {ROWS_OF.get(metric, 'paired')} rows"


def decide(rule: TargetRule, deltas: Mapping[str, MetricDelta], tolerance: float) -> Decision:
    """The verdict for one comparison, the rule that decided it, its reasons and the rows needed."""
    judged = deltas[rule.metric]
    reasons = [describe(judged)] + [describe(deltas[name]) for name in rule.shown_beside]
    worse: list[str] = []
    unsettled: dict[str, int | None] = {}
    for name in rule.guards:
        guard = deltas[name]
        if guard.delta is None:
            reasons.append(f"guard {name} not scored on both sides")
            continue
        shown_below = guard.ci_high is not None and guard.ci_high < 0
        past_tolerance = guard.delta < -tolerance - _ROUNDING_SLACK
        if shown_below and past_tolerance:
            worse.append(name)
            reasons.append(f"guard {describe(guard)}: shown worse, past the tolerance {tolerance:g}")
        elif shown_below:
            reasons.append(f"guard {describe(guard)}: lower, within the tolerance {tolerance:g}")
        elif guard.delta < 0:
            unsettled[name] = guard.rows_needed
            extra = f"; {rows_text(name, guard.rows_needed)} to settle it" if guard.rows_needed else ""
            reasons.append(f"guard {describe(guard)}: not shown worse{extra}")
        if guard.note:
            reasons.append(f"guard {name}: {guard.note}")

    def needed() -> dict[str, int]:
        wanted = {rule.metric: judged.rows_needed, **unsettled}
        return {name: rows for name, rows in wanted.items() if rows}

    if judged.n < MIN_PAIRED_ROWS:
        rows = max(MIN_PAIRED_ROWS - judged.n, judged.rows_needed or 0)
        reasons.append(
            f"INCONCLUSIVE (too few rows): {judged.n} paired rows have {rule.metric}, "
            f"at least {MIN_PAIRED_ROWS} are needed for any verdict; {rows_text(rule.metric, rows)} needed"
        )
        return Decision("INCONCLUSIVE", "too_few_rows", reasons, rows, {**needed(), rule.metric: rows})
    if judged.ci_high is not None and judged.ci_high < 0:
        reasons.append(f"REJECT (target below zero): the 95% interval of {rule.metric} is below zero")
        return Decision("REJECT", "target_below_zero", reasons)
    if worse:
        reasons.append(
            f"REJECT (guard worse): {', '.join(worse)} shown worse by more than the tolerance {tolerance:g}"
        )
        return Decision("REJECT", "guard_worse", reasons)
    if judged.ci_low is not None and judged.ci_low > 0:
        open_guards = f" ({', '.join(unsettled)} not settled)" if unsettled else ""
        reasons.append(
            f"KEEP (target above zero): the 95% interval of {rule.metric} is above zero "
            f"and no guard is shown worse{open_guards}"
        )
        return Decision("KEEP", "target_above_zero", reasons)
    if judged.rows_needed:
        settle = f"{rows_text(rule.metric, judged.rows_needed)} needed to settle it"
    else:
        settle = f"no difference in {rule.metric} on {judged.n} paired rows"
    reasons.append(f"INCONCLUSIVE (unsettled): the 95% interval of {rule.metric} includes zero; {settle}")
    return Decision("INCONCLUSIVE", "unsettled", reasons, judged.rows_needed, needed())
