"""Cohen's kappa and its interval, checked against a table computed by hand."""

from __future__ import annotations

import pytest

from facetopt.facets.decide.agreement import (
    broken_second_opinion,
    cohen_kappa,
    decision_table,
    kappa_too_low,
    same_text,
)


def test_kappa_and_its_small_sample_interval_match_the_hand_computation():
    """n = 50: both positive 20, A+ B- 5, A- B+ 10, both negative 15.
    Kappa on the table: po = 35/50 = 0.7; margins A (0.5, 0.5), B (0.6, 0.4); pe = 0.5; kappa = 0.4.
    The interval comes from the table plus one per cell: 21, 6, 11, 16 (n 54):
      po = 37/54 = 0.685185; margins A (0.5, 0.5), B (32/54, 22/54); pe = 0.5; kappa' = 0.370370
      diagonal: 21/54*(1 - (0.5+32/54)*0.629630)^2 + 16/54*(1 - (0.5+22/54)*0.629630)^2 = 0.092320
      off-diagonal: 0.629630^2 * (6/54*(32/54+0.5)^2 + 11/54*(22/54+0.5)^2) = 0.119076
      minus (0.370370 - 0.5*0.629630)^2; variance = 0.015430 (se 0.124219)
      t(0.975, 49 df) = 2.009575: 0.370370 -/+ 0.249627 = 0.120743 .. 0.619997 (contains 0.4)"""
    kappa = cohen_kappa([[20, 5], [10, 15]])
    assert kappa.n == 50
    assert kappa.agreement == pytest.approx(0.7)
    assert kappa.chance == pytest.approx(0.5)
    assert kappa.kappa == pytest.approx(0.4)
    assert kappa.ci_low == pytest.approx(0.120743, abs=1e-5)
    assert kappa.ci_high == pytest.approx(0.619997, abs=1e-5)
    assert kappa_too_low(kappa) is False  # 0.62 reaches above 0.6


def test_a_low_interval_is_flagged_and_one_class_only_has_no_kappa():
    assert kappa_too_low(cohen_kappa([[10, 10], [10, 10]]))  # chance agreement: kappa 0
    only_positive = cohen_kappa([[12, 0], [0, 0]])
    assert only_positive.kappa is None and only_positive.agreement == 1.0
    assert not kappa_too_low(only_positive)


def test_decision_table_counts_each_pair_once():
    first = [True, True, False, False, True]
    second = [True, False, True, False, True]
    assert decision_table(first, second) == [[2, 1], [1, 1]]
    with pytest.raises(ValueError):
        decision_table([True], [])


def test_same_text_ignores_case_spacing_and_separators():
    assert same_text("No_match ", "no  match")
    assert not same_text("Positive - thanks", "Negative - thanks")


def test_a_second_opinion_that_answers_none_on_every_row_is_broken_not_noise():
    labels = ["User wants a refund"] * 12 + ["NONE"] * 8
    broken = broken_second_opinion(labels, ["NONE"] * 20, [True] * 12 + [False] * 8, [False] * 20)
    assert broken is not None and "'NONE' on 20 of 20 rows (the labels: 8)" in broken


def test_a_second_opinion_in_another_format_throughout_is_broken():
    labels = [f"User wants thing {i}" for i in range(10)] + ["NONE"] * 10
    seconds = [f'{{"answer": "thing {i}"}}' for i in range(20)]
    broken = broken_second_opinion(labels, seconds, [True] * 10 + [False] * 10, [True] * 20)
    assert broken is not None and "20 of 20 answers begin with '{'" in broken


def test_an_honest_disagreement_and_a_rare_facet_are_not_broken():
    labels = [f"User wants thing {i}" for i in range(10)] + ["NONE"] * 10
    seconds = [f"User wants thing {i}" for i in range(6)] + ["NONE"] * 14
    assert (
        broken_second_opinion(labels, seconds, [True] * 10 + [False] * 10, [True] * 6 + [False] * 14) is None
    )
    rare = ["NONE"] * 19 + ["User asks twice"]
    assert broken_second_opinion(rare, ["NONE"] * 20, [False] * 19 + [True], [False] * 20) is None
    # another format whose decisions still agree is no fault ("Sentiment: Negative" against "Negative - ...")
    moods = ["Negative - upset"] * 8 + ["Positive - thanks"] * 8 + ["NONE"] * 4
    prefixed = ["Sentiment: Negative"] * 8 + ["Sentiment: Positive"] * 8 + ["NONE"] * 4
    sides = [True] * 16 + [False] * 4
    assert broken_second_opinion(moods, prefixed, sides, sides) is None
    # under ten rows nothing is called broken
    assert broken_second_opinion(labels[:9], ["NONE"] * 9, [True] * 9, [False] * 9) is None
