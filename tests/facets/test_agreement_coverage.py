"""The audit's kappa interval keeps its promise: in a seeded simulation over prevalences, marginal
differences and true kappas, at least 93% of the intervals shown contain the true kappa, from the
smallest table that gets one (10 rows); and no interval is a single point.

The true kappa of each setting is computed from the cell probabilities by hand (below), not by the
code under test; tables are drawn row by row from those probabilities."""

from __future__ import annotations

import random
from functools import cache

import pytest

from facetopt.facets.decide.agreement import MIN_KAPPA_ROWS, cohen_kappa

DRAWS = 1500


def cells(prevalence_a: float, prevalence_b: float, kappa: float) -> list[float] | None:
    """Cell probabilities (both +, A+ B-, A- B+, both -) of two labellers with these positive rates
    and this Cohen's kappa: pe = a b + (1 - a)(1 - b), po = pe + kappa (1 - pe), and
    p(both +) = (po - 1 + a + b) / 2 since po = p(both +) + p(both -) = 2 p(both +) + 1 - a - b."""
    a, b = prevalence_a, prevalence_b
    chance = a * b + (1 - a) * (1 - b)
    both = (chance + kappa * (1 - chance) - 1 + a + b) / 2
    probabilities = [both, a - both, b - both, 1 - a - b + both]
    return probabilities if min(probabilities) >= 0 else None


SETTINGS = [
    (a, a + gap, kappa, probabilities)
    for a in (0.05, 0.2, 0.5)
    for gap in (0.0, 0.2)
    for kappa in (0.0, 0.4, 0.6, 0.8, 0.95)
    if (probabilities := cells(a, a + gap, kappa)) is not None
]


@cache
def interval(table: tuple[int, int, int, int]) -> tuple[float, float] | None:
    result = cohen_kappa([[table[0], table[1]], [table[2], table[3]]])
    if result.kappa is None or result.ci_low is None or result.ci_high is None:
        return None  # shown as "kappa undefined", no interval
    return result.ci_low, result.ci_high


def draw(rng: random.Random, n: int, probabilities: list[float]) -> tuple[int, int, int, int]:
    counts = [0, 0, 0, 0]
    for cell in rng.choices(range(4), weights=probabilities, k=n):
        counts[cell] += 1
    return counts[0], counts[1], counts[2], counts[3]


def test_the_settings_cover_low_and_high_prevalence_and_kappa():
    assert len(SETTINGS) >= 20
    assert {s[2] for s in SETTINGS} == {0.0, 0.4, 0.6, 0.8, 0.95}


@pytest.mark.parametrize("n", [MIN_KAPPA_ROWS, 20, 40, 100, 400])
def test_at_least_93_percent_of_the_intervals_shown_contain_the_true_kappa(n: int):
    rng = random.Random(20240 + n)
    worst = []
    for a, b, kappa, probabilities in SETTINGS:
        shown = covered = 0
        for _ in range(DRAWS if n <= 100 else DRAWS // 2):  # large tables: slower, and near normal
            bounds = interval(draw(rng, n, probabilities))
            if bounds is None:
                continue
            shown += 1
            covered += bounds[0] - 1e-9 <= kappa <= bounds[1] + 1e-9
        if shown >= 100:
            worst.append((covered / shown, a, b, kappa, shown))
    worst.sort()
    assert len(worst) >= 15
    assert worst[0][0] >= 0.93, worst[:3]


def test_no_interval_is_a_point_not_even_without_a_single_disagreement():
    """20 rows, all agreeing: the old interval was 1.00 to 1.00, certainty from 20 rows."""
    for table in ([[10, 0], [0, 10]], [[3, 0], [0, 17]], [[1, 0], [0, 9]]):
        result = cohen_kappa(table)
        assert result.kappa == 1.0
        assert result.ci_high == 1.0 and result.ci_low is not None and result.ci_low < 0.9


def test_under_the_minimum_size_there_is_a_kappa_but_no_interval():
    result = cohen_kappa([[4, 1], [0, 4]])
    assert result.kappa is not None and result.ci_low is None and result.ci_high is None
