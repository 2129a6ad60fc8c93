"""Compare verdicts (KEEP / REJECT / INCONCLUSIVE) on constructed paired experiments."""

from __future__ import annotations

import pytest

from facetopt.domain.experiments import EvalRow
from facetopt.errors import InputError
from facetopt.facets.stats import mcnemar_exact_p, mcnemar_rows_needed, newcombe_paired_ci
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
    assert (result.verdict, result.rule) == ("KEEP", "target_above_zero")
    assert result.paired_rows == 60
    assert (result.mcnemar_b, result.mcnemar_c) == (0, 20)
    assert result.mcnemar_p == 2 / 2**20
    match = delta_of(result, "binary_decision_match")
    assert match.delta == pytest.approx(20 / 60)
    assert match.method == "newcombe"
    assert (match.worse, match.better) == (0, 20)
    # Newcombe's interval for (both, baseline only, candidate only, neither) = (40, 0, 20, 0)
    assert (match.ci_low, match.ci_high) == pytest.approx(newcombe_paired_ci(40, 0, 20, 0))
    assert match.ci_low > 0
    assert result.reasons[0].startswith("binary_decision_match +0.333 [")
    assert result.reasons[-1].startswith("KEEP (target above zero)")
    assert result.rows_needed is None and result.rows_needed_by_metric == {}


def test_clear_loss_is_rejected():
    baseline, candidate = paired([(20, True, True, False), (40, False, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("REJECT", "target_below_zero")
    assert delta_of(result, "binary_decision_match").ci_high < 0
    assert (result.mcnemar_b, result.mcnemar_c) == (20, 0)
    assert result.reasons[-1].startswith("REJECT (target below zero)")


def test_one_paired_row_is_inconclusive_whatever_the_deltas():
    # The issue's `competitor` case: Factuality -0.4 and the decision lost on the only row.
    baseline = [scored_row("only", positive=True, correct=True, factuality=1.0)]
    candidate = [scored_row("only", positive=True, correct=False, factuality=0.6)]
    result = compare_rows(baseline, candidate, "competitor")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "too_few_rows")
    assert result.reasons[-1].startswith("INCONCLUSIVE (too few rows): 1 paired rows")
    factuality = delta_of(result, "Factuality")
    assert factuality.delta == pytest.approx(-0.4)
    assert factuality.ci_low is None and "no interval on 1 paired rows" in factuality.note
    match = delta_of(result, "binary_decision_match")
    assert match.ci_low < -0.5 and match.ci_high > 0  # Newcombe: wide, never the point [-1, -1]
    assert result.rows_needed >= 9
    assert result.rows_needed_by_metric["binary_decision_match"] == result.rows_needed


def small_facet(fixed_false_positives: int) -> tuple[list, list]:
    """The issue's `issues` case: 18 positives of which one flips to a miss, and 12 negatives of which
    `fixed_false_positives` were false positives the edit fixed."""
    return paired(
        [
            (fixed_false_positives, False, False, True),
            (12 - fixed_false_positives, False, True, True),
            (1, True, True, False),
            (17, True, True, True),
        ],
        facet="issues",
    )


def test_a_one_row_guard_flip_on_a_small_facet_does_not_reject_a_clear_fix():
    baseline, candidate = small_facet(7)
    result = compare_rows(baseline, candidate, "issues", target="precision")
    recall = delta_of(result, "positive_recall")
    assert recall.delta == pytest.approx(-1 / 18) and recall.n == 18
    assert recall.ci_low < 0 < recall.ci_high  # one flip in 18 shows nothing
    specificity = delta_of(result, "negative_specificity")
    assert specificity.n == 12 and specificity.ci_low > 0  # 7 of 12 fixed, none broken
    assert (result.verdict, result.rule) == ("KEEP", "target_above_zero")
    assert any(
        r.startswith("guard positive_recall -0.056 [") and "not shown worse" in r for r in result.reasons
    )
    assert "positive_recall not settled" in result.reasons[-1]


def test_a_one_row_guard_flip_with_an_unsettled_target_is_inconclusive_with_rows_needed():
    baseline, candidate = small_facet(2)
    result = compare_rows(baseline, candidate, "issues", target="precision")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "unsettled")
    # target: b=0, c=2 on 12 expected-negative rows; guard: b=1, c=0 on 18 expected-positive rows
    assert result.rows_needed == mcnemar_rows_needed(0, 2, 12)
    assert result.rows_needed_by_metric == {
        "negative_specificity": mcnemar_rows_needed(0, 2, 12),
        "positive_recall": mcnemar_rows_needed(1, 0, 18),
    }
    assert "expected-negative rows needed" in result.reasons[-1]


def test_a_guard_shown_worse_past_the_tolerance_rejects_despite_a_target_win():
    # Fixes 60 false positives but misses 20 of 200 positives (recall -0.100, interval below zero).
    baseline, candidate = paired(
        [(60, False, False, True), (40, False, True, True), (20, True, True, False), (180, True, True, True)]
    )
    result = compare_rows(baseline, candidate, "task", target="precision")
    assert delta_of(result, "negative_specificity").ci_low > 0
    recall = delta_of(result, "positive_recall")
    assert recall.delta == pytest.approx(-0.1) and recall.ci_high < 0
    assert (result.verdict, result.rule) == ("REJECT", "guard_worse")
    assert result.reasons[-1].startswith("REJECT (guard worse): positive_recall")


def test_a_guard_lower_within_the_tolerance_does_not_reject():
    # 30 of 3000 positives lost (-0.010, interval below zero) while 200 of 400 false positives are fixed.
    baseline, candidate = paired(
        [
            (200, False, False, True),
            (200, False, True, True),
            (30, True, True, False),
            (2970, True, True, True),
        ]
    )
    result = compare_rows(baseline, candidate, "task", target="precision")
    recall = delta_of(result, "positive_recall")
    assert recall.ci_high < 0 and recall.delta > -0.02
    assert result.verdict == "KEEP"
    assert any("within the tolerance 0.02" in reason for reason in result.reasons)
    assert compare_rows(baseline, candidate, "task", target="precision", tolerance=0.005).verdict == "REJECT"


def test_factuality_guard_uses_a_bootstrap_that_never_claims_certainty():
    # A big match win; Factuality drops by 0.3 on every one of 40 rows.
    baseline, candidate = paired([(20, True, False, True), (20, False, True, True)])
    for row in candidate:
        row.scores["Factuality"] = 0.7
    result = compare_rows(baseline, candidate, "task")
    factuality = delta_of(result, "Factuality")
    assert factuality.method == "bootstrap" and "rule of three" in factuality.note
    # every row moved alike: 3/40 of rows may differ, each by at most 1.3 down or 0.7 up
    assert factuality.ci_low == pytest.approx(-0.3 - 3 / 40 * 0.7)
    assert factuality.ci_high == pytest.approx(-0.3 + 3 / 40 * 1.3)
    assert factuality.ci_low < factuality.ci_high < 0
    assert (result.verdict, result.rule) == ("REJECT", "guard_worse")


def test_factuality_drop_on_one_row_is_not_shown_worse():
    baseline, candidate = paired([(25, True, False, True), (25, False, True, True)])
    candidate[-1].scores["Factuality"] = 0.4  # autoevals' Factuality takes values like 0, 0.4, 0.6, 1
    result = compare_rows(baseline, candidate, "task")
    factuality = delta_of(result, "Factuality")
    assert factuality.method == "bootstrap"
    assert factuality.delta == pytest.approx(-0.012) and factuality.ci_low < 0 <= factuality.ci_high
    assert result.verdict == "KEEP"


def test_too_few_rows_is_inconclusive_with_rows_needed():
    # 6 rows, 2 fixed.
    baseline, candidate = paired([(2, True, False, True), (4, True, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "too_few_rows")
    # b=0, c=2, n=6: psi=1/3, delta=1/3
    # -> (1.96*sqrt(1/3) + 0.8416*sqrt(2/9))^2 * 9 = 21.02 -> 22 rows, 16 more.
    assert result.rows_needed == 16 == mcnemar_rows_needed(0, 2, 6)
    assert "about 16 more paired rows needed" in result.reasons[-1]


def test_no_change_is_inconclusive_without_an_estimate():
    baseline, candidate = paired([(10, True, True, True), (10, False, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "unsettled")
    assert result.rows_needed is None
    assert result.mcnemar_p == 1.0
    match = delta_of(result, "binary_decision_match")
    assert match.ci_low < 0 < match.ci_high  # 20 unchanged rows still leave room both ways


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
    assert result.reasons[0].endswith("on 40 expected-negative rows")
    assert result.reasons[1].startswith("precision +0.130 [")
    precision = delta_of(result, "precision")
    assert precision.baseline == pytest.approx(100 / 115)
    assert precision.candidate == pytest.approx(1.0)
    assert precision.ci_low > 0


def test_recall_target_judges_positive_recall():
    # Same data: recall lost 1 of 100, so nothing is settled.
    baseline, candidate = fewer_false_positives()
    result = compare_rows(baseline, candidate, "task", target="recall")
    assert result.verdict == "INCONCLUSIVE"
    assert result.reasons[0].startswith("positive_recall -0.010 [")
    # b=1, c=0, n=100: (1.96*0.1 + 0.8416*sqrt(0.0099))^2 / 0.0001 = 782.5 -> 783 rows, 683 more.
    assert result.rows_needed == 683
    assert "about 683 more expected-positive rows needed" in result.reasons[-1]


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
