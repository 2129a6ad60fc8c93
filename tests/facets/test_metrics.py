"""Per-facet metrics from per-row scores."""

from __future__ import annotations

import pytest

from facetopt.domain.experiments import EvalRow
from facetopt.facets.decide.metrics import facet_metrics, metrics_by_facet


def scored_row(row_id: str, *, positive: bool, correct: bool, facet: str = "task", **extra) -> EvalRow:
    scores: dict[str, float | None] = {"binary_decision_match": 1.0 if correct else 0.0}
    scores["positive_recall" if positive else "negative_specificity"] = 1.0 if correct else 0.0
    scores.update(extra)
    return EvalRow(id=row_id, facet_name=facet, scores=scores)


def confusion_fixture() -> list[EvalRow]:
    """3 expected-positive rows (2 found, 1 missed), 4 expected-negative (3 right, 1 false alarm),
    and one row whose task failed."""
    return [
        scored_row("p1", positive=True, correct=True, Factuality=1.0),
        scored_row("p2", positive=True, correct=True, Factuality=0.6),
        scored_row("p3", positive=True, correct=False, Factuality=0.0),
        scored_row("n1", positive=False, correct=True, Factuality=1.0),
        scored_row("n2", positive=False, correct=True, Factuality=1.0),
        scored_row("n3", positive=False, correct=True, Factuality=None),
        scored_row("n4", positive=False, correct=False, Factuality=0.4),
        EvalRow(id="e1", facet_name="task", error="timeout"),
    ]


def test_confusion_counts_and_rates():
    metrics = facet_metrics(confusion_fixture(), "task")
    assert (metrics.tp, metrics.fn, metrics.tn, metrics.fp) == (2, 1, 3, 1)
    assert metrics.n == 8
    assert metrics.errored == 1
    assert metrics.binary_decision_match == pytest.approx(5 / 7)
    assert metrics.positive_recall == pytest.approx(2 / 3)
    assert metrics.negative_specificity == pytest.approx(3 / 4)
    assert metrics.precision == pytest.approx(2 / 3)  # TP / (TP + FP) = 2 / 3
    assert metrics.f1 == pytest.approx(2 / 3)  # 2*2 / (2*2 + 1 + 1)
    assert metrics.factuality == pytest.approx((1.0 + 0.6 + 0.0 + 1.0 + 1.0 + 0.4) / 6)  # None skipped


def test_rates_are_none_when_no_row_applies():
    only_negatives = [scored_row(f"n{i}", positive=False, correct=True) for i in range(3)]
    metrics = facet_metrics(only_negatives, "issues")
    assert metrics.positive_recall is None
    assert metrics.precision is None  # never said "positive"
    assert metrics.f1 is None
    assert metrics.factuality is None
    assert metrics.sentiment_label_accuracy is None
    assert metrics.negative_specificity == 1.0


def test_sentiment_label_accuracy_is_the_mean_of_label_scores():
    rows = [
        scored_row("s1", positive=True, correct=True, facet="sentiment", sentiment_label_correct=1.0),
        scored_row("s2", positive=True, correct=True, facet="sentiment", sentiment_label_correct=0.0),
        scored_row("s3", positive=True, correct=True, facet="sentiment", sentiment_label_correct=1.0),
        scored_row("s4", positive=True, correct=True, facet="sentiment", sentiment_label_correct=None),
    ]
    assert facet_metrics(rows, "sentiment").sentiment_label_accuracy == pytest.approx(2 / 3)


def test_rows_averaged_over_trials_count_by_majority():
    rows = [
        EvalRow(id="a", facet_name="task", scores={"positive_recall": 2 / 3}),
        EvalRow(id="b", facet_name="task", scores={"negative_specificity": 1 / 3}),
    ]
    metrics = facet_metrics(rows, "task")
    assert (metrics.tp, metrics.fn, metrics.tn, metrics.fp) == (1, 0, 0, 1)
    assert metrics.positive_recall == pytest.approx(2 / 3)


def test_metrics_by_facet_groups_case_insensitively_and_ends_with_overall():
    rows = [
        scored_row("1", positive=True, correct=True, facet="Task"),
        scored_row("2", positive=False, correct=False, facet="issues"),
        scored_row("3", positive=True, correct=False, facet="task"),
    ]
    result = metrics_by_facet(rows)
    assert [m.facet_name for m in result] == ["issues", "Task", "overall"]
    assert [m.n for m in result] == [1, 2, 3]
    task = result[1]
    assert (task.tp, task.fn) == (1, 1)
    overall = result[2]
    assert (overall.tp, overall.fp, overall.fn) == (1, 1, 1)
    assert overall.binary_decision_match == pytest.approx(1 / 3)
