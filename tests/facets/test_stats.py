"""Exact McNemar, the paired bootstrap and the McNemar sample-size estimate, on hand-checkable numbers."""

from __future__ import annotations

import math
import random
import time

import pytest

from facetopt.facets.decide.stats import (
    categorical_bootstrap_ci,
    mcnemar_exact_p,
    mcnemar_rows_needed,
    newcombe_paired_ci,
    normal_ppf,
    paired_bootstrap_ci,
    paired_mean_rows_needed,
    widen_degenerate_interval,
    wilson_interval,
)


def test_mcnemar_exact_p_is_twice_the_binomial_tail():
    # b=1, c=9: 10 discordant pairs, P(X <= 1) = (C(10,0) + C(10,1)) / 2^10 = 11/1024.
    assert mcnemar_exact_p(1, 9) == pytest.approx(2 * 11 / 1024, abs=1e-15)
    assert mcnemar_exact_p(1, 9) == 0.021484375
    assert mcnemar_exact_p(9, 1) == mcnemar_exact_p(1, 9)
    # b=0, c=6: 2 * 1/64.
    assert mcnemar_exact_p(0, 6) == 2 / 64


def test_mcnemar_exact_p_is_one_without_evidence():
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(7, 7) == 1.0
    assert mcnemar_exact_p(3, 4) == 1.0  # 2 * P(X <= 3 | n=7) = 2 * 64/128, capped


def test_mcnemar_exact_p_handles_thousands_of_pairs():
    assert mcnemar_exact_p(0, 3000) == 0.0
    assert mcnemar_exact_p(1500, 1500) == 1.0


def test_normal_ppf_matches_the_usual_z_values():
    assert normal_ppf(0.975) == pytest.approx(1.959964, abs=1e-6)
    assert normal_ppf(0.8) == pytest.approx(0.841621, abs=1e-6)


def test_rows_needed_follows_the_mcnemar_sample_size_formula():
    # b=2, c=8, n=20: p10=0.1, p01=0.4, psi=0.5, delta=0.3.
    # (1.959964*sqrt(0.5) + 0.841621*sqrt(0.41))^2 / 0.09 = (1.385904 + 0.538900)^2 / 0.09 = 41.17
    # -> 42 rows in all, 22 more than the 20 we have.
    assert mcnemar_rows_needed(2, 8, 20) == 22
    assert mcnemar_rows_needed(8, 2, 20) == 22  # symmetric in the direction of the change


def test_rows_needed_is_at_least_one_and_none_without_a_difference():
    # b=0, c=30, n=100 would be settled with about 24 rows; still report one more row.
    assert mcnemar_rows_needed(0, 30, 100) == 1
    assert mcnemar_rows_needed(5, 5, 40) is None
    assert mcnemar_rows_needed(0, 0, 0) is None


def test_bootstrap_of_a_uniform_improvement_is_a_point():
    assert paired_bootstrap_ci([0, 0, 0, 0], [1, 1, 1, 1]) == (1.0, 1.0)
    assert paired_bootstrap_ci([1, 0, 1], [1, 0, 1]) == (0.0, 0.0)


def _binary_pairs(improved: int, worsened: int, unchanged: int, seed: int = 7) -> tuple[list, list]:
    pairs = [(0.0, 1.0)] * improved + [(1.0, 0.0)] * worsened + [(1.0, 1.0)] * unchanged
    random.Random(seed).shuffle(pairs)
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def test_bootstrap_interval_agrees_with_the_normal_approximation():
    # 400 rows, 40 improved, 10 worsened: delta 0.075,
    # se = sqrt((0.1 + 0.025 - 0.075^2) / 400) = 0.01728 -> normal 95% interval [0.0411, 0.1089].
    baseline, candidate = _binary_pairs(40, 10, 350)
    low, high = paired_bootstrap_ci(baseline, candidate)
    assert low == pytest.approx(0.0411, abs=0.006)
    assert high == pytest.approx(0.1089, abs=0.006)


def test_bootstrap_with_many_distinct_values_agrees_with_the_normal_approximation():
    rng = random.Random(3)
    baseline = [rng.random() for _ in range(500)]
    candidate = [value + 0.1 + rng.uniform(-0.5, 0.5) for value in baseline]
    deltas = [after - before for before, after in zip(baseline, candidate, strict=True)]
    mean = sum(deltas) / len(deltas)
    se = math.sqrt(sum((d - mean) ** 2 for d in deltas) / len(deltas) / len(deltas))
    low, high = paired_bootstrap_ci(baseline, candidate)
    assert low == pytest.approx(mean - 1.96 * se, abs=0.006)
    assert high == pytest.approx(mean + 1.96 * se, abs=0.006)


def test_bootstrap_is_deterministic_for_a_seed():
    baseline, candidate = _binary_pairs(12, 5, 40)
    first = paired_bootstrap_ci(baseline, candidate, seed=11)
    assert paired_bootstrap_ci(baseline, candidate, seed=11) == first
    other_seeds = {paired_bootstrap_ci(baseline, candidate, seed=seed) for seed in range(12, 17)}
    assert other_seeds != {first}  # the seed really drives the resampling


def test_bootstrap_of_two_thousand_rows_is_fast():
    baseline, candidate = _binary_pairs(150, 90, 1760)
    started = time.perf_counter()
    paired_bootstrap_ci(baseline, candidate, iterations=2000)
    assert time.perf_counter() - started < 0.5


def test_bootstrap_rejects_unpaired_or_empty_input():
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0, 0.0], [1.0])
    with pytest.raises(ValueError):
        paired_bootstrap_ci([], [])


def test_categorical_bootstrap_skips_undefined_resamples():
    # A ratio that is undefined whenever category "b" is missing from the resample.
    counts = {"a": 3, "b": 1}
    low, high = categorical_bootstrap_ci(counts, lambda c: c["a"] / c["b"] if c["b"] else None)
    assert 0.25 <= low <= high <= 3.0
    assert categorical_bootstrap_ci({"a": 2}, lambda c: None) is None


def _wilson_by_bisection(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Independent Wilson limits: the p where |x/n - p| = z * sqrt(p (1 - p) / n), found by bisection."""

    def outside(p: float) -> float:
        return abs(successes / trials - p) - z * math.sqrt(p * (1 - p) / trials)

    def root(low: float, high: float) -> float:
        for _ in range(200):
            middle = (low + high) / 2
            if (outside(low) > 0) == (outside(middle) > 0):
                low = middle
            else:
                high = middle
        return (low + high) / 2

    p_hat = successes / trials
    return (0.0 if successes == 0 else root(0.0, p_hat), 1.0 if successes == trials else root(p_hat, 1.0))


def _newcombe_by_hand(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Newcombe (1998) method 10 as printed, for theta = p1 - p2 with p1 = (a+b)/n, p2 = (a+c)/n,
    built on the bisection Wilson limits."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson_by_bisection(a + b, n)
    l2, u2 = _wilson_by_bisection(a + c, n)
    big_a = (a + b) * (c + d) * (a + c) * (b + d)
    big_b = a * d - b * c
    big_c = big_b - n / 2 if big_b > n / 2 else (0 if big_b >= 0 else big_b)
    phi = big_c / math.sqrt(big_a) if big_a else 0.0
    theta = p1 - p2
    low = theta - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = theta + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    return low, high


def test_wilson_interval_matches_its_defining_equation():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)  # the familiar 0/10 bound
    for successes, trials in [(0, 1), (1, 1), (3, 17), (81, 263)]:
        assert wilson_interval(successes, trials) == pytest.approx(
            _wilson_by_bisection(successes, trials), abs=1e-9
        )


def test_newcombe_paired_interval_matches_the_published_worked_example():
    # Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables (2017), chapter 8:
    # complete response before and after consolidation therapy (Cavo et al. 2012), table
    # [[59, 6], [16, 80]]; Newcombe square-and-add: estimate -0.0621, 95% CI -0.1186 to -0.0046
    # (p1 - p2). Ours is p_second - p_first, so the same interval with the sign flipped.
    low, high = newcombe_paired_ci(59, 6, 16, 80)
    assert (round(-high, 4), round(-low, 4)) == (-0.1186, -0.0046)
    # Swapping the discordant cells reverses the difference.
    assert newcombe_paired_ci(59, 16, 6, 80) == pytest.approx((-high, -low))


@pytest.mark.parametrize(
    "table",
    [(59, 6, 16, 80), (36, 12, 2, 0), (1, 1, 7, 12), (5, 0, 0, 5), (0, 1, 0, 0), (10, 0, 0, 0), (3, 4, 2, 9)],
)
def test_newcombe_paired_interval_matches_an_independent_computation(table):
    a, b, c, d = table
    low, high = _newcombe_by_hand(a, b, c, d)  # interval of p1 - p2
    assert newcombe_paired_ci(a, b, c, d) == pytest.approx((-high, -low), abs=1e-9)


def test_newcombe_paired_interval_never_collapses_on_small_samples():
    # One pair the candidate lost: the difference is -1, yet the interval reaches well past zero.
    low, high = newcombe_paired_ci(0, 1, 0, 0)
    assert -1 <= low < -0.5 and high > 0
    # Ten unchanged pairs: zero difference, but not a certain zero.
    low, high = newcombe_paired_ci(10, 0, 0, 0)
    assert low < -0.1 and high > 0.1
    assert newcombe_paired_ci(0, 0, 0, 0) is None
    with pytest.raises(ValueError):
        newcombe_paired_ci(-1, 0, 0, 3)


def test_rows_needed_for_a_continuous_score_follows_the_paired_normal_formula():
    # deltas alternate -0.2 and 0: mean -0.1, sd 0.10260 (n-1); ((1.95996 + 0.84162) * 0.1026 / 0.1)^2 = 8.27
    deltas = [-0.2, 0.0] * 10
    assert paired_mean_rows_needed(deltas) == 1  # 9 rows would do; 20 are there: report one more
    assert paired_mean_rows_needed([-0.2, 0.0] * 2) == 7  # sd 0.11547 -> 10.46 -> 11 rows, 4 there
    assert paired_mean_rows_needed([0.0, 0.0, 0.0]) is None
    assert paired_mean_rows_needed([0.5]) is None


def test_a_degenerate_bootstrap_is_widened_by_the_rule_of_three():
    assert widen_degenerate_interval(0.0, 30) == pytest.approx((-0.1, 0.1))
    assert widen_degenerate_interval(-0.4, 20) == pytest.approx((-0.4 - 0.15 * 0.6, -0.4 + 0.15 * 1.4))
    assert widen_degenerate_interval(1.0, 2) == (-1.0, 1.0)  # 3/n capped at every row
