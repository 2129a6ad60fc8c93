"""Per-metric paired deltas with intervals that stay honest on small samples.

0/1 scores (binary decision match, positive recall on expected-positive rows, negative
specificity on expected-negative rows, sentiment label) get Newcombe's paired score interval,
which never collapses to a point. Other scores (Factuality, or means over several trials) get a
paired bootstrap, only from `MIN_BOOTSTRAP_ROWS` pairs, and an interval widened by the rule of
three when every row moved alike (the percentile bootstrap would give a point). Precision,
reported beside the precision target, resamples the paired confusion-matrix outcomes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from facetopt.domain.experiments import EvalRow, MetricDelta
from facetopt.facets.decide.metrics import Outcome, decision_outcome, precision_from_counts, row_score
from facetopt.facets.decide.stats import (
    categorical_bootstrap_ci,
    mcnemar_rows_needed,
    newcombe_paired_ci,
    paired_bootstrap_ci,
    paired_mean_rows_needed,
    widen_degenerate_interval,
)

PRECISION = "precision"
MIN_BOOTSTRAP_ROWS = 10
NEWCOMBE = "newcombe"
BOOTSTRAP = "bootstrap"


def score_pairs(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], name: str
) -> list[tuple[float, float]]:
    """(baseline, candidate) scores of the rows where both sides have score `name`."""
    pairs = []
    for left, right in zip(baseline, candidate, strict=True):
        before, after = row_score(left, name), row_score(right, name)
        if before is not None and after is not None:
            pairs.append((before, after))
    return pairs


def discordance(pairs: Sequence[tuple[float, float]]) -> tuple[int, int]:
    """(b, c): pairs where only the baseline scored higher, and where only the candidate did."""
    return (
        sum(1 for before, after in pairs if before > after),
        sum(1 for before, after in pairs if after > before),
    )


def binary_delta(name: str, both: int, worse: int, better: int, neither: int) -> MetricDelta:
    """The delta of a 0/1 score from its paired table: rows right on both sides, right only on the
    baseline (worse), right only on the candidate (better), wrong on both. Newcombe's interval."""
    n = both + worse + better + neither
    if n == 0:
        return MetricDelta(metric=name)
    change = (better - worse) / n
    interval = newcombe_paired_ci(both, worse, better, neither)
    assert interval is not None  # n > 0
    return MetricDelta(
        metric=name,
        baseline=(both + worse) / n,
        candidate=(both + better) / n,
        delta=change,
        n=n,
        worse=worse,
        better=better,
        sd=_binary_sd(worse, better, n),
        ci_low=interval[0],
        ci_high=interval[1],
        method=NEWCOMBE,
        rows_needed=mcnemar_rows_needed(worse, better, n),
    )


def _binary_sd(worse: int, better: int, n: int) -> float | None:
    """Sample standard deviation of per-row changes that are +1 (better), -1 (worse) or 0."""
    if n < 2:
        return None
    mean = (better - worse) / n
    squares = better * (1 - mean) ** 2 + worse * (1 + mean) ** 2 + (n - better - worse) * mean**2
    return math.sqrt(squares / (n - 1))


def _sd(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))


def score_delta(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], name: str, iterations: int, seed: int
) -> MetricDelta:
    pairs = score_pairs(baseline, candidate, name)
    if not pairs:
        return MetricDelta(metric=name)
    n = len(pairs)
    worse, better = discordance(pairs)
    if all(value in (0.0, 1.0) for pair in pairs for value in pair):
        both = sum(1 for before, after in pairs if before == after == 1.0)
        return binary_delta(name, both, worse, better, n - both - worse - better)
    before_mean = sum(before for before, _ in pairs) / n
    after_mean = sum(after for _, after in pairs) / n
    deltas = [after - before for before, after in pairs]
    delta = MetricDelta(
        metric=name,
        baseline=before_mean,
        candidate=after_mean,
        delta=after_mean - before_mean,
        n=n,
        worse=worse,
        better=better,
        sd=_sd(deltas) if n > 1 else None,
    )
    rows_needed = paired_mean_rows_needed(deltas)
    update: dict[str, object] = {"method": BOOTSTRAP, "rows_needed": rows_needed}
    if n < MIN_BOOTSTRAP_ROWS:
        update["rows_needed"] = max(MIN_BOOTSTRAP_ROWS - n, rows_needed or 0)
        update["note"] = f"no interval on {n} paired rows (the bootstrap needs {MIN_BOOTSTRAP_ROWS})"
        return delta.model_copy(update=update)
    if len(set(deltas)) == 1:
        low, high = widen_degenerate_interval(deltas[0], n)
        update["note"] = "every row moved alike: interval from the rule of three, not the bootstrap"
    else:
        low, high = paired_bootstrap_ci(
            [before for before, _ in pairs], [after for _, after in pairs], iterations=iterations, seed=seed
        )
    update.update(ci_low=low, ci_high=high)
    return delta.model_copy(update=update)


def precision_delta(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow], iterations: int, seed: int
) -> MetricDelta:
    """Precision TP/(TP+FP) on rows where both sides have a decision outcome; the interval
    resamples the paired outcome types (from `MIN_BOOTSTRAP_ROWS` pairs)."""
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

    n = sum(paired_outcomes.values())
    before, after = side_precision(paired_outcomes, 0), side_precision(paired_outcomes, 1)
    interval = None
    note = None
    if before is not None and after is not None:
        if n < MIN_BOOTSTRAP_ROWS:
            note = f"no interval on {n} paired rows (the bootstrap needs {MIN_BOOTSTRAP_ROWS})"
        else:
            interval = categorical_bootstrap_ci(
                paired_outcomes, precision_change, iterations=iterations, seed=seed
            )
            if interval and interval[0] == interval[1]:
                interval, note = None, "the bootstrap gave a point: no interval reported"
    return MetricDelta(
        metric=PRECISION,
        baseline=before,
        candidate=after,
        delta=None if before is None or after is None else after - before,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        n=n,
        method=BOOTSTRAP,
        note=note,
    )
