"""Compare two experiments' paired rows and decide KEEP / REJECT / INCONCLUSIVE from intervals.

Rules (docs/compare.md): each target judges one score; guards are the opposite error direction(s)
and Factuality, each checked for non-inferiority at the guard margin (default 0.05).
- fewer than `MIN_PAIRED_ROWS` paired rows for the target's score: INCONCLUSIVE (too_few_rows);
- the target's 95% interval below zero: REJECT (target_below_zero);
- a guard's interval entirely below -margin: REJECT (guard_worse);
- the target's interval above zero and every guard's lower bound above -margin: KEEP
  (target_above_zero); a guard named with --no-guard is not checked, and the verdict says so;
- the target above zero but a guard that cannot be assessed (no scored pairs, no interval):
  INCONCLUSIVE (guard_unassessed); a guard whose interval straddles -margin: INCONCLUSIVE
  (guard_unsettled);
- otherwise INCONCLUSIVE (unsettled), with the rows needed per unsettled metric (McNemar sample
  size, power 0.8, alpha 0.05; for a guard, the rows to show it above -margin).
The last reason names the rule that decided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from facetopt.domain.experiments import SCORE_NAMES, EvalRow, FacetComparison, MetricDelta, Verdict
from facetopt.errors import InputError
from facetopt.facets.decide.metrics import OVERALL, group_by_facet
from facetopt.facets.decide.paired_deltas import (
    MIN_BOOTSTRAP_ROWS,
    NEWCOMBE,
    PRECISION,
    precision_delta,
    score_delta,
)
from facetopt.facets.decide.stats import mcnemar_exact_p, newcombe_paired_ci, noninferiority_rows_needed

MIN_PAIRED_ROWS = 10
ALPHA = 0.05  # two-sided: a 95% interval
DEFAULT_GUARD_MARGIN = 0.05
ROWS_OF = {"positive_recall": "expected-positive", "negative_specificity": "expected-negative"}
# what --no-guard accepts besides the metric names (the labels compare prints)
GUARD_ALIASES = {"recall": "positive_recall", "specificity": "negative_specificity"}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    # too_few_rows, target_below_zero, guard_worse, target_above_zero, guard_unassessed,
    # guard_unsettled or unsettled
    rule: str
    reasons: list[str]
    rows_needed: int | None = None
    rows_needed_by_metric: dict[str, int] = field(default_factory=dict)
    unassessed_guards: list[str] = field(default_factory=list)  # could not be assessed (named or not)


@dataclass(frozen=True)
class TargetRule:
    metric: str  # the score whose interval decides the verdict
    guards: tuple[str, ...]  # scores that must be shown not worse than the guard margin
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


def check_guard_margin(margin: float) -> None:
    """nan, inf or a negative margin would switch every guard off (or on) without a word."""
    if not math.isfinite(margin) or not 0 <= margin < 1:
        raise InputError(
            f"--guard-margin (--tolerance) must be a number from 0 to below 1 (got {margin})",
            hint=f"for example --guard-margin {DEFAULT_GUARD_MARGIN:g} (a guard may fall by at most "
            f"{DEFAULT_GUARD_MARGIN:g}: its interval's lower bound must stay above -{DEFAULT_GUARD_MARGIN:g})",
        )


def resolve_no_guard(target: str, names: Iterable[str]) -> tuple[str, ...]:
    """The guard metric names `--no-guard` names for `target` (metric names or compare's labels,
    any case); an error for a name that is not one of the target's guards."""
    rule = target_rule(target)
    by_key = {guard.casefold(): guard for guard in rule.guards}
    resolved: list[str] = []
    for name in names:
        key = name.strip().casefold()
        guard = by_key.get(GUARD_ALIASES.get(key, key).casefold())
        if guard is None:
            raise InputError(
                f"--no-guard {name!r} is not a guard of the {target.lower()} target",
                hint=f"its guards are: {', '.join(rule.guards)}",
            )
        if guard not in resolved:
            resolved.append(guard)
    return tuple(resolved)


def compare_rows(
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    facet_name: str,
    target: str = "balanced",
    margin: float = DEFAULT_GUARD_MARGIN,
    iterations: int = 2000,
    seed: int = 0,
    no_guard: Sequence[str] = (),
) -> FacetComparison:
    """Compare rows already paired (same order, same ids) and give a verdict for `target`.

    `margin`: how far a guard may fall (non-inferiority); `no_guard`: guards the user chose not to check."""
    rule = target_rule(target)
    check_guard_margin(margin)
    skipped = resolve_no_guard(target, no_guard)
    _check_paired(baseline, candidate)

    deltas = {name: score_delta(baseline, candidate, name, iterations, seed) for name in SCORE_NAMES}
    deltas[PRECISION] = precision_delta(baseline, candidate, iterations, seed)
    decision = decide(rule, deltas, margin, skipped)
    judged = deltas[rule.metric]
    return FacetComparison(
        facet_name=facet_name,
        paired_rows=len(baseline),
        deltas=list(deltas.values()),
        mcnemar_metric=rule.metric,
        mcnemar_b=judged.worse,
        mcnemar_c=judged.better,
        mcnemar_p=mcnemar_exact_p(judged.worse, judged.better) if judged.n else None,
        verdict=decision.verdict,
        rule=decision.rule,
        reasons=decision.reasons,
        rows_needed=decision.rows_needed,
        rows_needed_by_metric=decision.rows_needed_by_metric,
        guard_margin=margin,
        no_guard=list(skipped),
        unassessed_guards=decision.unassessed_guards,
    )


def compare_overall(
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    target: str = "balanced",
    margin: float = DEFAULT_GUARD_MARGIN,
    iterations: int = 2000,
    seed: int = 0,
    no_guard: Sequence[str] = (),
) -> FacetComparison:
    """`compare_rows` over all facets together, labelled "overall"."""
    return compare_rows(baseline, candidate, OVERALL, target, margin, iterations, seed, no_guard)


def compare_by_facet(
    baseline: Sequence[EvalRow],
    candidate: Sequence[EvalRow],
    target: str = "balanced",
    margin: float = DEFAULT_GUARD_MARGIN,
    iterations: int = 2000,
    seed: int = 0,
    no_guard: Sequence[str] = (),
) -> list[FacetComparison]:
    """One comparison per facet of the baseline rows (sorted by name), then "overall"."""
    _check_paired(baseline, candidate)
    comparisons = []
    for name, facet_rows in group_by_facet(baseline).items():
        key = name.casefold()
        paired = [
            other for row, other in zip(baseline, candidate, strict=True) if row.facet_name.casefold() == key
        ]
        comparisons.append(compare_rows(facet_rows, paired, name, target, margin, iterations, seed, no_guard))
    comparisons.append(compare_overall(baseline, candidate, target, margin, iterations, seed, no_guard))
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


def guard_rows_needed(guard: MetricDelta, margin: float) -> int | None:
    """More paired rows (of the guard's kind) likely to show the guard above -margin, if its true
    change is the observed one (power 0.8, alpha 0.05); None when the observed change is at or
    below -margin, where more rows would not show it."""
    if guard.delta is None or guard.delta <= -margin:
        return None
    n = guard.n
    if guard.sd is not None and guard.sd > 1e-9:  # rounding leaves a tiny sd when every row moved alike
        return noninferiority_rows_needed(guard.delta, guard.sd, n, margin)
    if guard.method == NEWCOMBE:
        # no discordant pair: the rows at which the same proportions give a lower bound above -margin
        right = guard.baseline or 0.0

        def clears(total: int) -> bool:
            interval = newcombe_paired_ci(right * total, 0, 0, (1 - right) * total)  # type: ignore[arg-type]
            return interval is not None and interval[0] > -margin

        low, high = max(n, 1), max(n, 1)
        while not clears(high):
            if high > 10**7:
                return None
            low, high = high, high * 2
        while high - low > 1:  # the smallest total that clears, by bisection
            middle = (low + high) // 2
            low, high = (low, middle) if clears(middle) else (middle, high)
        return max(1, high - n)
    # every row moved alike: the rule-of-three interval's lower bound d - 3/N (1 + d) above -margin
    required = math.floor(3 * (1 + guard.delta) / (guard.delta + margin)) + 1
    return max(1, required - n, MIN_BOOTSTRAP_ROWS - n)


def decide(
    rule: TargetRule, deltas: Mapping[str, MetricDelta], margin: float, no_guard: Sequence[str] = ()
) -> Decision:
    """The verdict for one comparison, the rule that decided it, its reasons and the rows needed."""
    judged = deltas[rule.metric]
    reasons = [describe(judged)] + [describe(deltas[name]) for name in rule.shown_beside if name in deltas]
    worse: list[str] = []
    unsettled: dict[str, int | None] = {}
    unassessed: dict[str, int | None] = {}
    for name in rule.guards:
        guard = deltas.get(name) or MetricDelta(metric=name)
        if name in no_guard:
            scored = describe(guard) if guard.delta is not None else f"{name} not scored on both sides"
            reasons.append(f"guard {scored}: not checked (--no-guard {name})")
            continue
        if guard.delta is None or guard.ci_low is None or guard.ci_high is None:
            why = "not scored on both sides" if guard.delta is None else (guard.note or "no interval")
            rows = None
            if guard.delta is not None:
                rows = max(guard_rows_needed(guard, margin) or 0, MIN_BOOTSTRAP_ROWS - guard.n) or None
            unassessed[name] = rows
            more = f"; {rows_text(name, rows)} to assess it" if rows else ""
            reasons.append(
                f"guard {name} cannot be assessed ({why}){more}: it blocks KEEP unless named with "
                f"--no-guard {name}"
            )
            continue
        if guard.ci_high < -margin:
            worse.append(name)
            reasons.append(f"guard {describe(guard)}: shown worse by more than the margin {margin:g}")
        elif guard.ci_low > -margin:
            reasons.append(f"guard {describe(guard)}: not worse than the margin {margin:g}")
        else:
            rows = guard_rows_needed(guard, margin)
            unsettled[name] = rows
            extra = (
                f"; {rows_text(name, rows)} to settle it"
                if rows
                else f"; its change is at or past -{margin:g}: more rows alike would not settle it"
            )
            reasons.append(f"guard {describe(guard)}: not shown within the margin {margin:g}{extra}")
        if guard.note:
            reasons.append(f"guard {name}: {guard.note}")
    named = sorted(set(no_guard) & set(rule.guards), key=rule.guards.index)
    unassessed_names = list(unassessed) + [n for n in named if n not in unassessed]

    def needed(with_target: bool = True) -> dict[str, int]:
        wanted = {**({rule.metric: judged.rows_needed} if with_target else {}), **unassessed, **unsettled}
        return {name: rows for name, rows in wanted.items() if rows}

    def decision(
        verdict: Verdict, name: str, rows: int | None = None, by_metric: dict[str, int] | None = None
    ):
        return Decision(verdict, name, reasons, rows, by_metric or {}, unassessed_names)

    if judged.n < MIN_PAIRED_ROWS:
        rows = max(MIN_PAIRED_ROWS - judged.n, judged.rows_needed or 0)
        reasons.append(
            f"INCONCLUSIVE (too few rows): {judged.n} paired rows have {rule.metric}, "
            f"at least {MIN_PAIRED_ROWS} are needed for any verdict; {rows_text(rule.metric, rows)} needed"
        )
        return decision("INCONCLUSIVE", "too_few_rows", rows, {**needed(), rule.metric: rows})
    if judged.ci_high is not None and judged.ci_high < 0:
        reasons.append(f"REJECT (target below zero): the 95% interval of {rule.metric} is below zero")
        return decision("REJECT", "target_below_zero")
    if worse:
        reasons.append(
            f"REJECT (guard worse): the 95% interval of {', '.join(worse)} lies below -{margin:g} "
            "(worse by more than the guard margin)"
        )
        return decision("REJECT", "guard_worse")
    target_p = mcnemar_exact_p(judged.worse, judged.better) if judged.method == NEWCOMBE else None
    if judged.ci_low is not None and judged.ci_low > 0 and target_p is not None and target_p >= ALPHA:
        # Newcombe's one-sided error can pass 2.5% a little; the exact test on the same discordant
        # pairs cannot, so a KEEP needs both
        reasons.append(
            f"INCONCLUSIVE (unsettled): the 95% interval of {rule.metric} is above zero, but the exact "
            f"McNemar test on its {judged.worse}/{judged.better} discordant pairs gives p = {target_p:.3f}, "
            f"not below {ALPHA:g}"
            + (
                f"; {rows_text(rule.metric, judged.rows_needed)} needed to settle it"
                if judged.rows_needed
                else ""
            )
        )
        return decision("INCONCLUSIVE", "unsettled", judged.rows_needed, needed())
    if judged.ci_low is not None and judged.ci_low > 0:
        if unassessed or unsettled:
            open_guards = needed(with_target=False)
            settle = "; ".join(rows_text(name, rows) for name, rows in open_guards.items())
            if unassessed:
                why = f"{', '.join(unassessed)} cannot be assessed"
                name = "guard_unassessed"
            else:
                why = f"{', '.join(unsettled)} not shown within the margin {margin:g}"
                name = "guard_unsettled"
            reasons.append(
                f"INCONCLUSIVE ({name.replace('_', ' ')}): the 95% interval of {rule.metric} is above zero "
                f"but {why}" + (f"; {settle} needed" if settle else "")
            )
            return decision(
                "INCONCLUSIVE", name, max(open_guards.values()) if open_guards else None, open_guards
            )
        skipped = f"; not checked: {', '.join(named)} (--no-guard)" if named else ""
        reasons.append(
            f"KEEP (target above zero): the 95% interval of {rule.metric} is above zero and every guard "
            f"is shown not worse than the margin {margin:g}{skipped}"
        )
        return decision("KEEP", "target_above_zero")
    if judged.rows_needed:
        settle = f"{rows_text(rule.metric, judged.rows_needed)} needed to settle it"
    else:
        settle = f"no difference in {rule.metric} on {judged.n} paired rows"
    reasons.append(f"INCONCLUSIVE (unsettled): the 95% interval of {rule.metric} includes zero; {settle}")
    return decision("INCONCLUSIVE", "unsettled", judged.rows_needed, needed())
