"""Per-facet metrics from eval rows whose per-row scores are already computed.

A row's scores are used as they are: `positive_recall` exists only on rows whose expected
value is positive, `negative_specificity` only on rows whose expected value is negative,
and a score that does not apply is None (or absent). Rates are means of the rows that
have the score. A row averaged over several trials counts towards TP/FN/TN/FP by majority
(score >= 0.5), so the counts always add up to the rows that have either score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

from facetopt.domain.experiments import EvalRow, FacetMetrics

Outcome = Literal["tp", "fn", "tn", "fp"]

OVERALL = "overall"


def row_score(row: EvalRow, name: str) -> float | None:
    """The row's score `name`, or None when it does not apply (missing, None or NaN)."""
    value = row.scores.get(name)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def decision_outcome(row: EvalRow) -> Outcome | None:
    """Confusion-matrix cell of the row's binary decision, None when neither side score exists."""
    recall = row_score(row, "positive_recall")
    if recall is not None:
        return "tp" if recall >= 0.5 else "fn"
    specificity = row_score(row, "negative_specificity")
    if specificity is not None:
        return "tn" if specificity >= 0.5 else "fp"
    return None


def precision_from_counts(tp: int, fp: int) -> float | None:
    """TP / (TP + FP), None when the model said "positive" on no row."""
    return tp / (tp + fp) if tp + fp else None


def mean_or_none(values: Iterable[float]) -> float | None:
    collected = list(values)
    return sum(collected) / len(collected) if collected else None


def facet_metrics(rows: Sequence[EvalRow], facet_name: str) -> FacetMetrics:
    """Metrics over `rows` (already scoped to one facet, or to all), labelled `facet_name`."""
    outcomes = [decision_outcome(row) for row in rows]
    tp = outcomes.count("tp")
    fp = outcomes.count("fp")
    fn = outcomes.count("fn")
    f1_denominator = 2 * tp + fp + fn

    def score_mean(name: str) -> float | None:
        return mean_or_none(value for row in rows if (value := row_score(row, name)) is not None)

    return FacetMetrics(
        facet_name=facet_name,
        n=len(rows),
        tp=tp,
        fp=fp,
        tn=outcomes.count("tn"),
        fn=fn,
        binary_decision_match=score_mean("binary_decision_match"),
        positive_recall=score_mean("positive_recall"),
        negative_specificity=score_mean("negative_specificity"),
        precision=precision_from_counts(tp, fp),
        f1=2 * tp / f1_denominator if f1_denominator else None,
        factuality=score_mean("Factuality"),
        sentiment_label_accuracy=score_mean("sentiment_label_correct"),
        errored=sum(1 for row in rows if row.error),
    )


def group_by_facet(rows: Iterable[EvalRow]) -> dict[str, list[EvalRow]]:
    """Rows per facet, names compared case-insensitively (first spelling seen is kept),
    in case-insensitive alphabetical order."""
    groups: dict[str, list[EvalRow]] = {}
    spelling: dict[str, str] = {}
    for row in rows:
        key = row.facet_name.casefold()
        spelling.setdefault(key, row.facet_name)
        groups.setdefault(key, []).append(row)
    return {spelling[key]: groups[key] for key in sorted(groups)}


def metrics_by_facet(rows: Sequence[EvalRow]) -> list[FacetMetrics]:
    """One entry per facet (sorted by name), then an "overall" entry over all rows."""
    per_facet = [facet_metrics(facet_rows, name) for name, facet_rows in group_by_facet(rows).items()]
    return [*per_facet, facet_metrics(rows, OVERALL)]
