"""Agreement between two labellers on the positive/negative decision: raw agreement and Cohen's
kappa with a 95% interval.

The interval is the large-sample one of Fleiss, Cohen and Everitt (1969): kappa plus or minus
z(0.975) times the square root of their asymptotic variance, clipped to [-1, 1]. For a table
p_ij (rows: labeller A, columns: labeller B, proportions of n) with margins p_i. and p_.j,
observed agreement po, chance agreement pe and kappa k:

    var(k) = ( sum_i p_ii [1 - (p_i. + p_.i)(1 - k)]^2
             + (1 - k)^2 sum_{i != j} p_ij (p_.i + p_j.)^2
             - [k - pe (1 - k)]^2 ) / ( n (1 - pe)^2 )

It is an approximation for large n: under MIN_KAPPA_ROWS rows no kappa is reported at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from facetopt.domain.dataset import expected_sha256
from facetopt.facets.stats import normal_ppf
from facetopt.facets.text import normalise_value

MIN_KAPPA_ROWS = 10
KAPPA_WARN_BELOW = 0.6
__all__ = ["Kappa", "cohen_kappa", "decision_table", "expected_sha256", "kappa_too_low", "same_text"]
INTERVAL_METHOD = "Fleiss-Cohen-Everitt asymptotic variance, normal 95% interval"


class Kappa(BaseModel):
    n: int
    agreement: float  # observed agreement po
    chance: float  # chance agreement pe
    kappa: float | None = None  # None when pe == 1 (both labellers gave one class only)
    ci_low: float | None = None
    ci_high: float | None = None


def decision_table(first: Sequence[bool], second: Sequence[bool]) -> list[list[int]]:
    """2x2 counts: [[both positive, A positive B negative], [A negative B positive, both negative]]."""
    if len(first) != len(second):
        raise ValueError("both labellers must label the same rows")
    table = [[0, 0], [0, 0]]
    for a, b in zip(first, second, strict=True):
        table[0 if a else 1][0 if b else 1] += 1
    return table


def cohen_kappa(table: list[list[int]], confidence: float = 0.95) -> Kappa:
    """Kappa and its interval from a square count table (rows labeller A, columns labeller B)."""
    k = len(table)
    n = sum(sum(row) for row in table)
    if n == 0:
        raise ValueError("no rows")
    p = [[cell / n for cell in row] for row in table]
    rows = [sum(p[i]) for i in range(k)]
    cols = [sum(p[i][j] for i in range(k)) for j in range(k)]
    po = sum(p[i][i] for i in range(k))
    pe = sum(rows[i] * cols[i] for i in range(k))
    if math.isclose(pe, 1.0):
        return Kappa(n=n, agreement=po, chance=pe)
    kappa = (po - pe) / (1 - pe)
    diagonal = sum(p[i][i] * (1 - (rows[i] + cols[i]) * (1 - kappa)) ** 2 for i in range(k))
    off = sum(p[i][j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j)
    variance = (diagonal + (1 - kappa) ** 2 * off - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2)
    half = normal_ppf(1 - (1 - confidence) / 2) * math.sqrt(max(0.0, variance))
    return Kappa(
        n=n,
        agreement=po,
        chance=pe,
        kappa=kappa,
        ci_low=max(-1.0, kappa - half),
        ci_high=min(1.0, kappa + half),
    )


def kappa_too_low(kappa: Kappa | None) -> bool:
    """True when the whole interval lies under KAPPA_WARN_BELOW."""
    return kappa is not None and kappa.ci_high is not None and kappa.ci_high < KAPPA_WARN_BELOW


def same_text(a: str | None, b: str | None) -> bool:
    """Equal after trimming, case and `_`/`-` folding (the none-like rule's normal form)."""
    return " ".join(normalise_value(a).split()) == " ".join(normalise_value(b).split())
