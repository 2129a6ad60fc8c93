"""Exact McNemar, the paired bootstrap and the McNemar sample-size estimate, on hand-checkable numbers."""

from __future__ import annotations

import math
import random
import time

import pytest

from facetopt.facets.stats import (
    categorical_bootstrap_ci,
    mcnemar_exact_p,
    mcnemar_rows_needed,
    normal_ppf,
    paired_bootstrap_ci,
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
