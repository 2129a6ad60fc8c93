"""Cohen's kappa and its interval, checked against a table computed by hand."""

from __future__ import annotations

import math

import pytest

from facetopt.facets.agreement import cohen_kappa, decision_table, kappa_too_low, same_text


def test_kappa_and_its_fleiss_cohen_everitt_interval_match_the_hand_computation():
    """n = 50: both positive 20, A+ B- 5, A- B+ 10, both negative 15.
    po = 35/50 = 0.7; margins A (0.5, 0.5), B (0.6, 0.4); pe = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.4.
    1 - kappa = 0.6:
      diagonal: 0.4*(1 - 1.1*0.6)^2 + 0.3*(1 - 0.9*0.6)^2 = 0.04624 + 0.06348 = 0.10972
      off-diagonal: 0.36 * (0.1*(0.6+0.5)^2 + 0.2*(0.4+0.5)^2) = 0.36 * 0.283 = 0.10188
      minus (0.4 - 0.5*0.6)^2 = 0.01
      variance = 0.2016 / (50 * 0.25) = 0.016128; se = 0.126996
      95%: 0.4 -/+ 1.959964 * 0.126996 = 0.151093 .. 0.648907"""
    kappa = cohen_kappa([[20, 5], [10, 15]])
    assert kappa.n == 50
    assert kappa.agreement == pytest.approx(0.7)
    assert kappa.chance == pytest.approx(0.5)
    assert kappa.kappa == pytest.approx(0.4)
    half = 1.959964 * math.sqrt(0.016128)
    assert kappa.ci_low == pytest.approx(0.4 - half, abs=1e-6)
    assert kappa.ci_high == pytest.approx(0.4 + half, abs=1e-6)
    assert kappa.ci_low == pytest.approx(0.151093, abs=1e-5)
    assert kappa_too_low(kappa) is False  # 0.65 reaches above 0.6


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
