"""Small exact statistics for paired comparisons: McNemar, Wilson and Newcombe score intervals,
the paired bootstrap, sample size.

Pure Python and fast: the bootstrap resamples counts of distinct outcomes (a multinomial
draw) instead of individual rows whenever the data has few distinct values, which is
always the case for 0/1 scores. Resampling counts is the same distribution as resampling
paired row indices, at a cost that does not grow with the number of rows.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from statistics import NormalDist
from typing import TypeVar

Category = TypeVar("Category", bound=Hashable)

# Above this many distinct per-row deltas, resampling row indices is cheaper than counts.
_MAX_COUNT_CATEGORIES = 32


def normal_ppf(probability: float) -> float:
    """Inverse of the standard normal CDF (z such that P(Z <= z) = probability)."""
    return NormalDist().inv_cdf(probability)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar test: binomial(b + c, 1/2) on the discordant pairs.

    b: pairs where only the baseline is right; c: pairs where only the candidate is right.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant pair counts must be non-negative")
    discordant = b + c
    if discordant == 0:
        return 1.0
    smaller = min(b, c)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1))
    # Integer division of big ints keeps this exact until the final rounding to float.
    return min(1.0, 2 * tail / 2**discordant)


def mcnemar_rows_needed(b: int, c: int, n: int, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Paired rows still needed to detect the observed discordance (Connor 1987 / Miettinen).

    With p10 = b/n, p01 = c/n, psi = p10 + p01 and delta = p01 - p10:
    N = (z_{alpha/2} * sqrt(psi) + z_power * sqrt(psi - delta^2))^2 / delta^2.
    Returns N - n rounded up, at least 1; None when there is no observed difference or no rows.
    """
    if n <= 0 or b == c:
        return None
    p10 = b / n
    p01 = c / n
    psi = p10 + p01
    delta = p01 - p10
    z_alpha = normal_ppf(1 - alpha / 2)
    z_power = normal_ppf(power)
    root = z_alpha * math.sqrt(psi) + z_power * math.sqrt(max(0.0, psi - delta * delta))
    required = math.ceil(root * root / (delta * delta) - 1e-9)
    return max(1, required - n)


def noninferiority_rows_needed(
    delta: float, sd: float, n: int, margin: float, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Paired rows still needed to show a change is above -margin (one-sided alpha/2, as the lower
    bound of the two-sided interval), if the true change is the observed `delta` with per-row
    standard deviation `sd`: N = ((z_{alpha/2} + z_power) * sd / (delta + margin))^2.
    None when the observed change is at or below -margin (more rows would not show it)."""
    gap = delta + margin
    if gap <= 0 or n <= 0:
        return None
    z = normal_ppf(1 - alpha / 2) + normal_ppf(power)
    required = math.ceil((z * sd / gap) ** 2 - 1e-9)
    return max(1, required - n)


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (no continuity correction)."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials and trials > 0")
    z = normal_ppf(1 - (1 - level) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def newcombe_paired_ci(
    both: int, first_only: int, second_only: int, neither: int, level: float = 0.95
) -> tuple[float, float] | None:
    """Newcombe's score interval for p_second - p_first on paired binary outcomes.

    Method 10 of Newcombe (1998, Statistics in Medicine 17:2635-2650): Wilson intervals for the
    two marginal proportions, squared and added with the correlation correction phi, where
    B = both * neither - first_only * second_only, C = B - n/2 when B > n/2, 0 when
    0 <= B <= n/2, B when B < 0, and phi = C / sqrt of the product of the four margins (0 when
    a margin is empty). It never collapses to a point, even on one pair. None without pairs.
    """
    counts = (both, first_only, second_only, neither)
    if min(counts) < 0:
        raise ValueError("paired counts must be non-negative")
    n = sum(counts)
    if n == 0:
        return None
    successes_first, successes_second = both + first_only, both + second_only
    p1, p2 = successes_first / n, successes_second / n
    low1, high1 = wilson_interval(successes_first, n, level)
    low2, high2 = wilson_interval(successes_second, n, level)
    margins = successes_first * (n - successes_first) * successes_second * (n - successes_second)
    agreement = both * neither - first_only * second_only
    corrected = agreement - n / 2 if agreement > n / 2 else (agreement if agreement < 0 else 0.0)
    phi = corrected / math.sqrt(margins) if margins else 0.0
    difference = p2 - p1
    lower = difference - math.sqrt(
        max(0.0, (p2 - low2) ** 2 - 2 * phi * (p2 - low2) * (high1 - p1) + (high1 - p1) ** 2)
    )
    upper = difference + math.sqrt(
        max(0.0, (high2 - p2) ** 2 - 2 * phi * (high2 - p2) * (p1 - low1) + (p1 - low1) ** 2)
    )
    return max(-1.0, lower), min(1.0, upper)


def paired_mean_rows_needed(deltas: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Paired rows still needed to detect the observed mean change of a continuous score
    (normal approximation: N = ((z_{alpha/2} + z_power) * sd / mean)^2). None without a change."""
    n = len(deltas)
    if n < 2:
        return None
    mean = sum(deltas) / n
    if mean == 0:
        return None
    variance = sum((d - mean) ** 2 for d in deltas) / (n - 1)
    z = normal_ppf(1 - alpha / 2) + normal_ppf(power)
    required = math.ceil(z * z * variance / (mean * mean) - 1e-9)
    return max(1, required - n)


def widen_degenerate_interval(delta: float, n: int, bound: float = 1.0) -> tuple[float, float]:
    """An honest interval when every paired row moved by the same `delta` (the bootstrap gives a point).

    By the rule of three, up to 3/n of future rows may still behave differently, each moving by at
    most `bound` - delta upwards or `bound` + delta downwards (scores in [0, bound])."""
    share = min(1.0, 3.0 / n)
    return max(-bound, delta - share * (bound + delta)), min(bound, delta + share * (bound - delta))


def paired_bootstrap_ci(
    baseline: Sequence[float],
    candidate: Sequence[float],
    iterations: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of mean(candidate) - mean(baseline) over paired resamples of the rows."""
    if len(baseline) != len(candidate):
        raise ValueError("baseline and candidate must be paired (same length)")
    if not baseline:
        raise ValueError("cannot bootstrap an empty sample")
    _check_resampling(iterations, level)
    row_count = len(baseline)
    deltas = [float(c) - float(b) for b, c in zip(baseline, candidate, strict=True)]
    delta_counts = Counter(deltas)
    if len(delta_counts) <= _MAX_COUNT_CATEGORIES:
        interval = categorical_bootstrap_ci(
            delta_counts,
            lambda counts: sum(value * count for value, count in counts.items()) / row_count,
            iterations=iterations,
            seed=seed,
            level=level,
        )
        assert interval is not None  # a mean is always defined
        return interval
    rng = random.Random(seed)
    means = [sum(rng.choices(deltas, k=row_count)) / row_count for _ in range(iterations)]
    return _percentile_interval(means, level)


def categorical_bootstrap_ci(
    counts: Mapping[Category, int],
    statistic: Callable[[Mapping[Category, int]], float | None],
    iterations: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Bootstrap interval of a statistic of category counts (e.g. paired outcome types).

    Each iteration draws a multinomial resample of the same total; resamples where the
    statistic is undefined (None) are skipped. Returns None when none is defined.
    """
    _check_resampling(iterations, level)
    categories = [category for category, count in counts.items() if count > 0]
    weights = [counts[category] for category in categories]
    if not categories:
        return None
    rng = random.Random(seed)
    values: list[float] = []
    for _ in range(iterations):
        drawn = _multinomial(rng, weights)
        value = statistic(dict(zip(categories, drawn, strict=True)))
        if value is not None:
            values.append(value)
    if not values:
        return None
    return _percentile_interval(values, level)


def _check_resampling(iterations: int, level: float) -> None:
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")


def _multinomial(rng: random.Random, weights: Sequence[int]) -> list[int]:
    """Counts of len(weights) categories in sum(weights) draws with replacement."""
    remaining_draws = sum(weights)
    remaining_weight = remaining_draws
    drawn: list[int] = []
    for weight in weights[:-1]:
        if remaining_draws == 0:
            drawn.append(0)
            continue
        count = _binomial(rng, remaining_draws, weight / remaining_weight)
        drawn.append(count)
        remaining_draws -= count
        remaining_weight -= weight
    drawn.append(remaining_draws)
    return drawn


def _binomial(rng: random.Random, trials: int, probability: float) -> int:
    """Exact binomial draw by inversion, summing probabilities outward from the mode.

    Expected work is about one standard deviation of steps (Python 3.11 has no binomialvariate).
    """
    if probability <= 0.0:
        return 0
    if probability >= 1.0:
        return trials
    mode = min(trials, int((trials + 1) * probability))
    log_mode_mass = (
        math.lgamma(trials + 1)
        - math.lgamma(mode + 1)
        - math.lgamma(trials - mode + 1)
        + mode * math.log(probability)
        + (trials - mode) * math.log1p(-probability)
    )
    odds = probability / (1.0 - probability)
    remaining = rng.random() - math.exp(log_mode_mass)
    if remaining < 0:
        return mode
    low = high = mode
    low_mass = high_mass = math.exp(log_mode_mass)
    while low > 0 or high < trials:
        if high < trials:
            high_mass *= (trials - high) / (high + 1) * odds
            high += 1
            remaining -= high_mass
            if remaining < 0:
                return high
        if low > 0:
            low_mass *= low / ((trials - low + 1) * odds)
            low -= 1
            remaining -= low_mass
            if remaining < 0:
                return low
    return mode  # only reached through floating-point rounding of the total mass


def _percentile_interval(values: list[float], level: float) -> tuple[float, float]:
    ordered = sorted(values)
    tail = (1.0 - level) / 2.0
    return _quantile(ordered, tail), _quantile(ordered, 1.0 - tail)


def _quantile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default percentile)."""
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
