"""Seeded simulation of compare's verdict rule over thousands of paired tables.

Each simulated comparison has `rows` paired rows, half expected-positive and half expected-negative.
On each half, every row is drawn independently into one cell of the paired 2x2 table (right on
both sides, right only on the baseline, right only on the candidate, wrong on both) with the
probabilities of `Truth`; the tables go through the production path compare uses for 0/1 scores
(`paired_deltas.binary_delta`, then `verdict.decide`). Factuality is left out (named as not
guarded): its bootstrap is too slow for thousands of tables, and its rule is the same check.

Regenerate the power table in docs/compare.md with:

    .venv/bin/python -m tests.facets.guard_simulation
"""

from __future__ import annotations

import bisect
import math
import random
import sys
from dataclasses import dataclass
from functools import cache

from facetopt.facets.decide.paired_deltas import binary_delta
from facetopt.facets.decide.verdict import DEFAULT_GUARD_MARGIN, TARGETS, Decision, decide

SIZES = (40, 100, 400, 1000)
Table = tuple[int, int, int, int]  # both right, baseline right only, candidate right only, both wrong
TABLES = 4000


@dataclass(frozen=True)
class Truth:
    """The true paired behaviour of one 0/1 metric: baseline accuracy, the share of rows that go from
    right to wrong (flips), and the true change (the share going wrong to right is flips + change)."""

    accuracy: float
    flips: float
    change: float

    def cells(self) -> tuple[float, float, float, float]:
        better = self.flips + self.change
        both = self.accuracy - self.flips
        neither = 1.0 - both - self.flips - better
        assert min(both, better, neither) >= 0, self
        return both, self.flips, better, neither


@cache
def _binomial_cdf(trials: int, probability: float) -> tuple[float, ...]:
    cdf, total = [], 0.0
    for k in range(trials + 1):
        log_mass = (
            math.lgamma(trials + 1)
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + (k * math.log(probability) if k else 0.0)
            + ((trials - k) * math.log1p(-probability) if trials - k else 0.0)
        )
        total += math.exp(log_mass)
        cdf.append(total)
    return tuple(cdf)


def binomial(rng: random.Random, trials: int, probability: float) -> int:
    if trials == 0 or probability <= 0.0:
        return 0
    if probability >= 1.0:
        return trials
    cdf = _binomial_cdf(trials, round(probability, 12))
    return min(trials, bisect.bisect_left(cdf, rng.random() * cdf[-1]))


def draw_table(rng: random.Random, rows: int, truth: Truth) -> Table:
    """A multinomial draw of `rows` rows into the four cells, as sequential binomials."""
    left, mass, drawn = rows, 1.0, []
    for share in truth.cells()[:-1]:
        count = binomial(rng, left, min(1.0, share / mass) if mass > 0 else 0.0)
        drawn.append(count)
        left, mass = left - count, mass - share
    drawn.append(left)
    return drawn[0], drawn[1], drawn[2], drawn[3]


def p_keep(
    target: str,
    rows: int,
    positive: Truth,
    negative: Truth,
    tables: int = TABLES,
    seed: int = 0,
    margin: float = DEFAULT_GUARD_MARGIN,
) -> float:
    """The share of `tables` simulated comparisons that end KEEP."""
    rng = random.Random(f"{seed}-{target}-{rows}-{positive}-{negative}")
    positives = rows // 2
    keeps = 0
    for _ in range(tables):
        pos = draw_table(rng, positives, positive)
        neg = draw_table(rng, rows - positives, negative)
        keeps += decide_tables(target, pos, neg, margin).verdict == "KEEP"
    return keeps / tables


def decide_tables(target: str, pos: Table, neg: Table, margin: float = DEFAULT_GUARD_MARGIN) -> Decision:
    """The verdict of one comparison from its positive-row and negative-row tables."""
    deltas = {
        "positive_recall": binary_delta("positive_recall", *pos),
        "negative_specificity": binary_delta("negative_specificity", *neg),
        # on a positive row the decision matches exactly when it is recalled (and on a negative
        # row when it is specific): the match table is the sum of the two
        "binary_decision_match": binary_delta(
            "binary_decision_match", *(a + b for a, b in zip(pos, neg, strict=True))
        ),
    }
    return decide(TARGETS[target], deltas, margin, ("Factuality",))


# baseline recall 0.70 and specificity 0.80; 5% of rows flip right-to-wrong whatever the edit
RECALL, SPECIFICITY, FLIPS = 0.70, 0.80, 0.05


def power_table(tables: int = TABLES) -> list[str]:
    lines = [
        "| target | true gain | " + " | ".join(f"{n} rows" for n in SIZES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in SIZES) + " |",
    ]
    for target in ("recall", "balanced"):
        for gain in (0.10, 0.15):
            if target == "recall":
                pos, neg = Truth(RECALL, FLIPS, gain), Truth(SPECIFICITY, FLIPS, 0.0)
            else:
                pos, neg = Truth(RECALL, FLIPS, gain), Truth(SPECIFICITY, FLIPS, gain)
            shares = [p_keep(target, n, pos, neg, tables) for n in SIZES]
            lines.append(f"| {target} | +{gain:.2f} | " + " | ".join(f"{s:.3f}" for s in shares) + " |")
    return lines


if __name__ == "__main__":
    sys.stdout.write("\n".join(power_table()) + "\n")
