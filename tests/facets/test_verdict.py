"""Compare verdicts (KEEP / REJECT / INCONCLUSIVE) on constructed paired experiments.

Guards are non-inferiority checks at the margin (0.05 by default): a KEEP needs each guard's 95%
interval above -0.05. Two by-hand facts used below: n rows right on both sides give a guard interval
whose lower bound is -(1 - n / (n + z^2)) (Newcombe with no discordant pair: one minus the Wilson
lower bound of n/n), above -0.05 from n = 73; and a Factuality that moved alike on every one of n
rows by a non-0/1 amount gets the rule-of-three interval (Factuality of 1.0 on both sides is a 0/1
score, so it gets Newcombe's, like any other).
"""

from __future__ import annotations

import math

import pytest

from facetopt.domain.experiments import EvalRow
from facetopt.errors import InputError
from facetopt.facets.decide.stats import mcnemar_exact_p, mcnemar_rows_needed, newcombe_paired_ci
from facetopt.facets.decide.verdict import (
    TARGETS,
    check_guard_margin,
    compare_by_facet,
    compare_overall,
    compare_rows,
    resolve_no_guard,
)


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


Z = 1.959963984540054  # the 97.5% normal quantile


def big_win() -> tuple[list, list]:
    """200 positives (40 misses fixed, 160 right), 200 negatives right: every guard has enough rows."""
    return paired([(40, True, False, True), (160, True, True, True), (200, False, True, True)])


def test_clear_win_with_every_guard_shown_within_the_margin_is_kept():
    baseline, candidate = big_win()
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("KEEP", "target_above_zero")
    assert result.paired_rows == 400 and result.guard_margin == 0.05
    # b/c and p are the judged metric's own (balanced: the decision match)
    assert (result.mcnemar_metric, result.mcnemar_b, result.mcnemar_c) == ("binary_decision_match", 0, 40)
    assert result.mcnemar_p == 2 / 2**40
    match = delta_of(result, "binary_decision_match")
    assert match.delta == pytest.approx(40 / 400)
    assert (match.ci_low, match.ci_high) == pytest.approx(newcombe_paired_ci(160 + 200, 0, 40, 0))
    specificity = delta_of(result, "negative_specificity")
    assert specificity.ci_low == pytest.approx(-(1 - 200 / (200 + Z * Z)))  # -0.019, above -0.05
    # Factuality 1.0 on every row is a 0/1 score: Newcombe again
    assert delta_of(result, "Factuality").ci_low == pytest.approx(-(1 - 400 / (400 + Z * Z)))
    assert result.reasons[-1].startswith("KEEP (target above zero)")
    assert "not worse than the margin 0.05" in result.reasons[-1]
    assert result.rows_needed is None and result.rows_needed_by_metric == {}
    assert result.unassessed_guards == [] and result.no_guard == []


def test_clear_loss_is_rejected():
    baseline, candidate = paired([(20, True, True, False), (40, False, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("REJECT", "target_below_zero")
    assert delta_of(result, "binary_decision_match").ci_high < 0
    assert (result.mcnemar_b, result.mcnemar_c) == (20, 0)
    assert result.reasons[-1].startswith("REJECT (target below zero)")


def test_one_paired_row_is_inconclusive_whatever_the_deltas():
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


def test_recall_nine_of_nine_to_six_of_nine_blocks_a_precision_keep():
    # The review's case: 30 of 60 false positives fixed, recall 9/9 -> 6/9. The old rule kept it.
    baseline, candidate = paired(
        [(30, False, False, True), (30, False, True, True), (3, True, True, False), (6, True, True, True)]
    )
    result = compare_rows(baseline, candidate, "task", target="precision")
    assert delta_of(result, "negative_specificity").ci_low > 0
    recall = delta_of(result, "positive_recall")
    assert recall.ci_low < -0.05 < recall.ci_high  # not shown worse, not shown within the margin
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unsettled")
    # 69 rows of Factuality 1.0 on both sides leave -(1 - 69/(69 + z^2)) = -0.053: 4 rows short of 73
    assert "positive_recall, Factuality not shown within the margin 0.05" in result.reasons[-1]
    assert result.rows_needed_by_metric == {"Factuality": 4}
    # -0.333 is past -0.05: more rows alike would confirm the loss, not settle it for a KEEP
    assert any("more rows alike would not settle it" in r for r in result.reasons)


def test_four_of_a_hundred_positives_lost_and_none_gained_is_not_kept():
    baseline, candidate = paired(
        [(60, False, False, True), (40, False, True, True), (4, True, True, False), (96, True, True, True)]
    )
    result = compare_rows(baseline, candidate, "task", target="precision")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unsettled")
    # rows to show recall above -0.05 if it truly changes by -0.04: per-row changes are -1 on 4 of
    # 100 rows, else 0; N = ((z_.975 + z_.8) sd / (-0.04 + 0.05))^2
    mean = -0.04
    sd = math.sqrt((4 * (1 + mean) ** 2 + 96 * mean**2) / 99)
    needed = math.ceil(((Z + 0.8416212335729143) * sd / 0.01) ** 2) - 100
    assert result.rows_needed_by_metric == {"positive_recall": needed}
    assert result.rows_needed == needed
    assert f"about {needed} more expected-positive rows needed" in result.reasons[-1]


def test_a_guard_shown_worse_past_the_margin_rejects_despite_a_target_win():
    # Fixes 60 false positives but misses 20 of 200 positives (recall -0.100, interval below -0.05).
    baseline, candidate = paired(
        [(60, False, False, True), (40, False, True, True), (20, True, True, False), (180, True, True, True)]
    )
    result = compare_rows(baseline, candidate, "task", target="precision")
    assert delta_of(result, "negative_specificity").ci_low > 0
    recall = delta_of(result, "positive_recall")
    assert recall.delta == pytest.approx(-0.1) and recall.ci_high < -0.05
    assert (result.verdict, result.rule) == ("REJECT", "guard_worse")
    assert result.reasons[-1].startswith("REJECT (guard worse): the 95% interval of positive_recall")


def test_a_guard_lower_within_the_margin_does_not_block_a_keep():
    # 30 of 3000 positives lost (-0.010) while 200 of 400 false positives are fixed.
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
    assert recall.ci_high < 0 and recall.ci_low > -0.05
    assert result.verdict == "KEEP"
    assert any(
        "positive_recall -0.010" in r and "not worse than the margin 0.05" in r for r in result.reasons
    )
    # a margin of 0.005 puts the same interval wholly below -margin
    tight = compare_rows(baseline, candidate, "task", target="precision", margin=0.005)
    assert (tight.verdict, tight.rule, tight.guard_margin) == ("REJECT", "guard_worse", 0.005)


def test_a_small_facet_cannot_show_its_guards_within_the_margin():
    # the issue's `issues` case: 18 positives of which one flips to a miss, 7 of 12 false positives fixed
    baseline, candidate = small_facet(7)
    result = compare_rows(baseline, candidate, "issues", target="precision")
    assert delta_of(result, "negative_specificity").ci_low > 0
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unsettled")
    # recall -1/18 is past -0.05: no estimate; Factuality 1.0 on 30 rows: 73 rows would clear the margin
    factuality = delta_of(result, "Factuality")
    assert factuality.ci_low == pytest.approx(-(1 - 30 / (30 + Z * Z)))
    assert result.rows_needed_by_metric == {"Factuality": 73 - 30}


def test_an_unsettled_target_lists_the_rows_for_it_and_each_open_guard():
    baseline, candidate = small_facet(2)
    result = compare_rows(baseline, candidate, "issues", target="precision")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "unsettled")
    assert result.rows_needed == mcnemar_rows_needed(0, 2, 12)
    # recall -1/18 is past -0.05 (no estimate); Factuality needs 73 rows in all
    assert result.rows_needed_by_metric == {
        "negative_specificity": mcnemar_rows_needed(0, 2, 12),
        "Factuality": 43,
    }
    assert "expected-negative rows needed" in result.reasons[-1]


def test_a_guard_with_no_discordant_pair_says_how_many_rows_would_clear_the_margin():
    # recall target; 20 negatives all right on both sides: the lower bound -(1 - 20/(20 + z^2)) = -0.16
    baseline, candidate = paired([(40, True, False, True), (160, True, True, True), (20, False, True, True)])
    result = compare_rows(baseline, candidate, "task", target="recall")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unsettled")
    # smallest N with N / (N + z^2) > 0.95: N > 0.95 z^2 / 0.05 = 72.99, so 73: 53 more
    assert result.rows_needed_by_metric == {"negative_specificity": 53}


def test_the_factuality_guard_uses_a_bootstrap_that_never_claims_certainty():
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
    assert factuality.ci_high < -0.05
    assert (result.verdict, result.rule) == ("REJECT", "guard_worse")


def test_factuality_drop_on_one_row_of_many_is_within_the_margin():
    baseline, candidate = big_win()
    candidate[-1].scores["Factuality"] = 0.4  # autoevals' Factuality takes values like 0, 0.4, 0.6, 1
    result = compare_rows(baseline, candidate, "task")
    factuality = delta_of(result, "Factuality")
    assert factuality.method == "bootstrap"
    assert factuality.delta == pytest.approx(-0.6 / 400) and factuality.ci_low > -0.05
    assert result.verdict == "KEEP"


def test_a_guard_no_row_could_assess_blocks_keep_unless_named():
    baseline, candidate = big_win()
    for row in baseline + candidate:
        row.scores["Factuality"] = None  # the judge scored nothing
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unassessed")
    assert result.unassessed_guards == ["Factuality"]
    assert any("guard Factuality cannot be assessed (not scored on both sides)" in r for r in result.reasons)
    named = compare_rows(baseline, candidate, "task", no_guard=["factuality"])
    assert (named.verdict, named.rule) == ("KEEP", "target_above_zero")
    assert named.no_guard == ["Factuality"] and named.unassessed_guards == ["Factuality"]
    assert "not checked: Factuality (--no-guard)" in named.reasons[-1]


def test_nine_judged_rows_all_falling_get_no_interval_and_no_keep():
    # the review's case: Factuality 1.0 -> 0.4 on the 9 judged rows, nothing else judged
    baseline, candidate = big_win()
    for index, (left, right) in enumerate(zip(baseline, candidate, strict=True)):
        left.scores["Factuality"], right.scores["Factuality"] = (1.0, 0.4) if index < 9 else (None, None)
    result = compare_rows(baseline, candidate, "task")
    assert delta_of(result, "Factuality").ci_low is None
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unassessed")
    assert result.rows_needed_by_metric == {"Factuality": 1}  # the bootstrap needs 10 pairs


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


def test_an_interval_above_zero_without_an_exact_mcnemar_win_is_not_kept():
    # b=0, c=5 over 400 rows: Newcombe's lower bound is just above zero, but the exact test on 5
    # discordant pairs gives p = 2/32 = 0.0625
    baseline, candidate = paired([(5, True, False, True), (195, True, True, True), (200, False, True, True)])
    result = compare_rows(baseline, candidate, "task", target="recall")
    recall = delta_of(result, "positive_recall")
    assert recall.ci_low > 0
    assert result.mcnemar_p == pytest.approx(2 / 32)
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "unsettled")
    assert "exact McNemar test on its 0/5 discordant pairs gives p = 0.062" in result.reasons[-1]


def fewer_false_positives() -> tuple[list, list]:
    # 100 positives, 40 negatives with 15 false alarms; the candidate fixes all 15, misses 1 positive.
    return paired(
        [(15, False, False, True), (25, False, True, True), (1, True, True, False), (99, True, True, True)]
    )


def test_precision_target_judges_specificity_shows_its_own_mcnemar_and_reports_precision():
    baseline, candidate = fewer_false_positives()
    result = compare_rows(baseline, candidate, "task", target="precision")
    assert result.reasons[0].startswith("negative_specificity +0.375 [")
    assert result.reasons[0].endswith("on 40 expected-negative rows")
    assert result.reasons[1].startswith("precision +0.130 [")
    # b/c are specificity's (0 broken, 15 fixed), not the decision match's (1/15)
    assert (result.mcnemar_metric, result.mcnemar_b, result.mcnemar_c) == ("negative_specificity", 0, 15)
    assert result.mcnemar_p == 2 / 2**15
    precision = delta_of(result, "precision")
    assert precision.baseline == pytest.approx(100 / 115)
    assert precision.candidate == pytest.approx(1.0)
    assert precision.ci_low > 0
    # one positive lost in 100: recall's lower bound is -0.01 - (0.99 - Wilson low of 99/100) < -0.05
    wilson_low = (0.99 + Z * Z / 200 - Z * math.sqrt(0.99 * 0.01 / 100 + Z * Z / 40000)) / (1 + Z * Z / 100)
    assert delta_of(result, "positive_recall").ci_low == pytest.approx(-0.01 - (0.99 - wilson_low))
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unsettled")


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
    task_base, task_cand = big_win()
    issue_base, issue_cand = paired([(3, False, True, True)], facet="Issues")
    results = compare_by_facet(task_base + issue_base, task_cand + issue_cand)
    assert [r.facet_name for r in results] == ["Issues", "task", "overall"]
    assert [r.paired_rows for r in results] == [3, 400, 403]
    assert results[1].verdict == "KEEP"
    assert results[0].rule == "too_few_rows"
    overall = compare_overall(task_base + issue_base, task_cand + issue_cand)
    assert overall == results[2]


def test_a_facet_without_negative_rows_cannot_assess_specificity():
    baseline, candidate = paired([(40, True, False, True), (160, True, True, True)])
    result = compare_rows(baseline, candidate, "task")
    assert (result.verdict, result.rule) == ("INCONCLUSIVE", "guard_unassessed")
    assert result.unassessed_guards == ["negative_specificity"]
    named = compare_rows(baseline, candidate, "task", no_guard=["specificity"])
    assert named.verdict == "KEEP" and named.no_guard == ["negative_specificity"]


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


@pytest.mark.parametrize("margin", [float("nan"), float("inf"), -0.01, 1.0])
def test_a_margin_that_would_switch_the_guards_off_or_on_is_refused(margin: float):
    with pytest.raises(InputError, match="must be a number from 0 to below 1") as raised:
        check_guard_margin(margin)
    assert "--guard-margin 0.05" in raised.value.hint


def test_no_guard_names_only_a_guard_of_the_target():
    assert resolve_no_guard("precision", ["RECALL", "factuality", "positive_recall"]) == (
        "positive_recall",
        "Factuality",
    )
    with pytest.raises(InputError, match="not a guard of the precision target") as raised:
        resolve_no_guard("precision", ["negative_specificity"])
    assert raised.value.hint == "its guards are: positive_recall, Factuality"
