"""Compare verdicts (KEEP / REJECT / INCONCLUSIVE) on constructed paired experiments."""

from __future__ import annotations

import pytest

from facetopt.domain.experiments import EvalRow
from facetopt.errors import InputError
from facetopt.facets.stats import mcnemar_exact_p, mcnemar_rows_needed
from facetopt.facets.verdict import TARGETS, compare_by_facet, compare_overall, compare_rows


def scored_row(
    row_id: str, *, positive: bool, correct: bool, factuality: float | None = 1.0, facet: str = "task"
) -> EvalRow:
    scores: dict[str, float | None] = {
        "binary_decision_match": 1.0 if correct else 0.0,
        "Factuality": factuality,
    }
    scores["positive_recall" if positive else "negative_specificity"] = 1.0 if correct else 0.0
    return EvalRow(id=row_id, facet_name=facet, scores=scores)


def paired(groups: list[tuple[int, bool, bool, bool]], facet: str = "task") -> tuple[list, list]:
    """groups of (count, expected positive, baseline correct, candidate correct)."""
    baseline, candidate = [], []
    for group, (count, positive, before, after) in enumerate(groups):
        for index in range(count):
            row_id = f"{facet}-{group}-{index}"
            baseline.append(scored_row(row_id, positive=positive, correct=before, facet=facet))
            candidate.append(scored_row(row_id, positive=positive, correct=after, facet=facet))
    return baseline, candidate


def delta_of(comparison, metric):
    return next(d for d in comparison.deltas if d.metric == metric)


def test_clear_win_is_kept():
    # 60 rows: 20 the baseline got wrong are fixed, 40 stay right.
    baseline, candidate = paired([(20, True, False, True), (20, True, True, True), (20, False, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert result.verdict == "KEEP"
    assert result.paired_rows == 60
    assert (result.mcnemar_b, result.mcnemar_c) == (0, 20)
    assert result.mcnemar_p == 2 / 2**20
    match = delta_of(result, "binary_decision_match")
    assert match.delta == pytest.approx(20 / 60)
    assert match.ci_low > 0
    assert result.reasons[0].startswith("binary_decision_match +0.333 [")
    assert result.rows_needed is None


def test_clear_loss_is_rejected():
    baseline, candidate = paired([(20, True, True, False), (40, False, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert result.verdict == "REJECT"
    assert delta_of(result, "binary_decision_match").ci_high < 0
    assert (result.mcnemar_b, result.mcnemar_c) == (20, 0)
    assert any("interval below zero" in reason for reason in result.reasons)


def test_a_broken_guard_rejects_despite_a_target_win():
    # Fixes 20 false positives (match +16/80) but misses 4 of 40 positives (recall -0.100).
    baseline, candidate = paired(
        [(20, False, False, True), (20, False, True, True), (4, True, True, False), (36, True, True, True)]
    )
    result = compare_rows(baseline, candidate, "task")
    assert delta_of(result, "binary_decision_match").ci_low > 0
    assert delta_of(result, "positive_recall").delta == pytest.approx(-0.1)
    assert result.verdict == "REJECT"
    assert "guard positive_recall -0.100 below -0.02" in result.reasons


def test_factuality_guard_uses_the_tolerance():
    # A big match win; Factuality drops on exactly one row of 50 (-0.02).
    baseline, candidate = paired([(25, True, False, True), (25, False, True, True)])
    candidate[-1].scores["Factuality"] = 0.0
    assert compare_rows(baseline, candidate, "task").verdict == "KEEP"  # -0.02 is not below -0.02
    strict = compare_rows(baseline, candidate, "task", tolerance=0.01)
    assert strict.verdict == "REJECT"
    assert "guard Factuality -0.020 below -0.01" in strict.reasons


def test_too_few_rows_is_inconclusive_with_rows_needed():
    # 6 rows, 2 fixed: the interval still touches zero.
    baseline, candidate = paired([(2, True, False, True), (4, True, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert result.verdict == "INCONCLUSIVE"
    # b=0, c=2, n=6: psi=1/3, delta=1/3
    # -> (1.96*sqrt(1/3) + 0.8416*sqrt(2/9))^2 * 9 = 21.02 -> 22 rows, 16 more.
    assert result.rows_needed == 16 == mcnemar_rows_needed(0, 2, 6)
    assert "about 16 more paired rows needed" in result.reasons[-1]


def test_no_change_is_inconclusive_without_an_estimate():
    baseline, candidate = paired([(10, True, True, True), (10, False, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert result.verdict == "INCONCLUSIVE"
    assert result.rows_needed is None
    assert result.mcnemar_p == 1.0


def fewer_false_positives() -> tuple[list, list]:
    # 100 positives, 40 negatives with 15 false alarms; the candidate fixes all 15, misses 1 positive.
    return paired(
        [(15, False, False, True), (25, False, True, True), (1, True, True, False), (99, True, True, True)]
    )


def test_precision_target_judges_specificity_and_reports_precision():
    baseline, candidate = fewer_false_positives()
    result = compare_rows(baseline, candidate, "task", target="precision")
    assert result.verdict == "KEEP"
    assert result.reasons[0].startswith("negative_specificity +0.375 [")
    assert result.reasons[1].startswith("precision +0.130 [")
    precision = delta_of(result, "precision")
    assert precision.baseline == pytest.approx(100 / 115)
    assert precision.candidate == pytest.approx(1.0)
    assert precision.ci_low > 0


def test_recall_target_judges_positive_recall():
    # Same data: recall lost 1 of 100 (-0.01, not a guard breach elsewhere), so nothing is settled.
    baseline, candidate = fewer_false_positives()
    result = compare_rows(baseline, candidate, "task", target="recall")
    assert result.verdict == "INCONCLUSIVE"
    assert result.reasons[0].startswith("positive_recall -0.010 [")
    # b=1, c=0, n=100: (1.96*0.1 + 0.8416*sqrt(0.0099))^2 / 0.0001 = 782.5 -> 783 rows, 683 more.
    assert result.rows_needed == 683


def test_recall_target_keeps_fewer_false_negatives_that_precision_cannot_judge():
    baseline, candidate = paired([(15, True, False, True), (25, True, True, True), (100, False, True, True)])
    assert compare_rows(baseline, candidate, "task", target="recall").verdict == "KEEP"
    assert compare_rows(baseline, candidate, "task", target="precision").verdict == "INCONCLUSIVE"


def test_metric_deltas_use_only_rows_scored_on_both_sides():
    baseline, candidate = paired([(5, True, False, True), (5, False, True, True)])
    candidate[0] = EvalRow(id=candidate[0].id, facet_name="task", error="rate limited")
    result = compare_rows(baseline, candidate, "task")
    assert [d.metric for d in result.deltas] == [
        "binary_decision_match",
        "positive_recall",
        "negative_specificity",
        "sentiment_label_correct",
        "Factuality",
        "precision",
    ]
    assert delta_of(result, "binary_decision_match").n == 9
    assert delta_of(result, "positive_recall").n == 4
    assert delta_of(result, "sentiment_label_correct").n == 0
    assert delta_of(result, "sentiment_label_correct").delta is None
    assert (result.mcnemar_b, result.mcnemar_c) == (0, 4)
    assert result.mcnemar_p == mcnemar_exact_p(0, 4)


def test_same_seed_same_comparison():
    baseline, candidate = paired([(7, True, False, True), (3, True, True, False), (30, False, True, True)])
    first = compare_rows(baseline, candidate, "task", seed=5)
    assert compare_rows(baseline, candidate, "task", seed=5) == first


def test_overall_and_per_facet_comparisons():
    task_base, task_cand = paired([(20, True, False, True), (20, True, True, True)], facet="task")
    issue_base, issue_cand = paired([(3, False, True, True)], facet="Issues")
    results = compare_by_facet(task_base + issue_base, task_cand + issue_cand)
    assert [r.facet_name for r in results] == ["Issues", "task", "overall"]
    assert [r.paired_rows for r in results] == [3, 40, 43]
    assert results[1].verdict == "KEEP"
    overall = compare_overall(task_base + issue_base, task_cand + issue_cand)
    assert overall == results[2]


def test_bad_input_is_refused():
    baseline, candidate = paired([(3, True, True, True)])
    assert set(TARGETS) == {"balanced", "precision", "recall"}
    with pytest.raises(InputError) as raised:
        compare_rows(baseline, candidate, "task", target="f1")
    assert "balanced" in raised.value.hint
    with pytest.raises(ValueError):
        compare_rows(baseline, list(reversed(candidate)), "task")
    with pytest.raises(ValueError):
        compare_rows(baseline, candidate[:2], "task")
