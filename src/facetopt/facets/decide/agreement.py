"""Agreement between two labellers on the positive/negative decision: raw agreement and Cohen's
kappa with a 95% interval, and the signs of a broken second opinion.

Kappa is (po - pe) / (1 - pe) on the observed table. Its interval is the large-sample one of
Fleiss, Cohen and Everitt (1969) made fit for small tables:

- the variance is computed on the table with one pseudo-row added to every cell (a
  "plus one" adjustment, as Agresti-Coull's for a proportion), so a table without
  disagreement no longer has variance 0 and a zero-width interval;
- the interval is centred on the adjusted table's kappa, uses Student's t quantile with n - 1
  degrees of freedom instead of 1.96, is widened to contain the observed kappa and clipped to
  [-1, 1].

For a table p_ij (rows: labeller A, columns: labeller B, proportions of n) with margins p_i.
and p_.j, observed agreement po, chance agreement pe and kappa k:

    var(k) = ( sum_i p_ii [1 - (p_i. + p_.i)(1 - k)]^2
             + (1 - k)^2 sum_{i != j} p_ij (p_.i + p_j.)^2
             - [k - pe (1 - k)]^2 ) / ( n (1 - pe)^2 )

Its coverage, computed exactly over every table at 10 to 40 rows (lowest 0.939, at 40) and by
seeded simulation up to 400 (tests/facets/test_agreement_coverage.py), is at least 0.93 over
prevalences 0.05-0.5, marginal differences up to 0.3 and true kappas 0-0.95; the plain interval
covered as little as 28% at 20 rows. Under MIN_KAPPA_ROWS rows no kappa is reported at all.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from facetopt.domain.dataset import expected_sha256
from facetopt.facets.data.text import normalise_value
from facetopt.facets.decide.stats import normal_ppf

MIN_KAPPA_ROWS = 10
KAPPA_WARN_BELOW = 0.6
PSEUDO_COUNT = 1.0
# A second opinion giving one answer (or one decision) on this share of rows while the labels give
# it on BROKEN_GAP fewer of them is a broken audit, not label noise: with one rater constant, kappa
# is 0 by construction and says nothing about the labels.
BROKEN_SHARE = 0.9
BROKEN_GAP = 0.25
FORMAT_LABEL_SHARE = 0.1
MIN_BROKEN_ROWS = 10
__all__ = [
    "Kappa",
    "broken_second_opinion",
    "cohen_kappa",
    "decision_table",
    "expected_sha256",
    "kappa_too_low",
    "one_answer",
    "same_text",
    "student_t_ppf",
]
INTERVAL_METHOD = (
    "Fleiss-Cohen-Everitt variance on the table plus one per cell, Student t (n - 1 df) 95% interval "
    "containing the observed kappa (coverage >= 0.93 from 10 rows)"
)
_FORMAT_RE = re.compile(r"^\s*(```|\{|\[|<[A-Za-z_]*|\"|'|\*\*|#+|[A-Za-z][A-Za-z _-]{0,24}:)")


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


def student_t_ppf(probability: float, df: int) -> float:
    """Student's t quantile by the Cornish-Fisher expansion (error under 1e-3 from 5 df)."""
    z = normal_ppf(probability)
    v = float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def _kappa_and_variance(table: Sequence[Sequence[float]]) -> tuple[float, float, float, float | None, float]:
    """(n, po, pe, kappa or None, variance) of a square table of counts (possibly fractional)."""
    k = len(table)
    n = sum(sum(row) for row in table)
    p = [[cell / n for cell in row] for row in table]
    rows = [sum(p[i]) for i in range(k)]
    cols = [sum(p[i][j] for i in range(k)) for j in range(k)]
    po = sum(p[i][i] for i in range(k))
    pe = sum(rows[i] * cols[i] for i in range(k))
    if math.isclose(pe, 1.0):
        return n, po, pe, None, 0.0
    kappa = (po - pe) / (1 - pe)
    diagonal = sum(p[i][i] * (1 - (rows[i] + cols[i]) * (1 - kappa)) ** 2 for i in range(k))
    off = sum(p[i][j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j)
    variance = (diagonal + (1 - kappa) ** 2 * off - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2)
    return n, po, pe, kappa, max(0.0, variance)


def cohen_kappa(table: list[list[int]], confidence: float = 0.95) -> Kappa:
    """Kappa of a square count table (rows labeller A, columns labeller B) and, from
    MIN_KAPPA_ROWS rows, its small-sample interval (see the module docstring)."""
    n = sum(sum(row) for row in table)
    if n == 0:
        raise ValueError("no rows")
    _, po, pe, kappa, _ = _kappa_and_variance(table)
    result = Kappa(n=n, agreement=po, chance=pe, kappa=kappa)
    if n < MIN_KAPPA_ROWS:
        return result
    adjusted = [[cell + PSEUDO_COUNT for cell in row] for row in table]
    _, _, _, centre, variance = _kappa_and_variance(adjusted)
    assert centre is not None  # every cell of the adjusted table is positive
    half = student_t_ppf(1 - (1 - confidence) / 2, n - 1) * math.sqrt(variance)
    low, high = centre - half, centre + half
    if kappa is not None:
        low, high = min(low, kappa), max(high, kappa)
    result.ci_low, result.ci_high = max(-1.0, low), min(1.0, high)
    return result


def kappa_too_low(kappa: Kappa | None) -> bool:
    """True when the whole interval lies under KAPPA_WARN_BELOW."""
    return kappa is not None and kappa.ci_high is not None and kappa.ci_high < KAPPA_WARN_BELOW


def same_text(a: str | None, b: str | None) -> bool:
    """Equal after trimming, case and `_`/`-` folding (the none-like rule's normal form)."""
    return _normal(a) == _normal(b)


def _normal(text: str | None) -> str:
    return " ".join(normalise_value(text).split())


def _answer_format(text: str) -> str:
    match = _FORMAT_RE.match(text)
    return match.group(1).strip().casefold() if match else ""


def broken_second_opinion(
    labels: Sequence[str],
    seconds: Sequence[str],
    label_positive: Sequence[bool],
    second_positive: Sequence[bool],
) -> str | None:
    """Why the second opinion looks broken rather than in disagreement, or None.

    Broken: from MIN_BROKEN_ROWS rows, the second opinion gives one answer, or puts rows on one
    side, on at least BROKEN_SHARE of them while the labels do so on BROKEN_GAP fewer;
    or it answers in one format (a leading `{`, a code fence, `Answer:` ...) the labels almost
    never use, with decisions agreeing on under 75% of rows. Such a table says nothing about the
    labels."""
    n = len(seconds)
    if n < MIN_BROKEN_ROWS or not (len(labels) == len(label_positive) == len(second_positive) == n):
        return None
    answer, count = Counter(_normal(s) for s in seconds).most_common(1)[0]
    in_labels = sum(_normal(label) == answer for label in labels)
    shown = next(s.strip() for s in seconds if _normal(s) == answer)
    if count >= BROKEN_SHARE * n and in_labels <= count - BROKEN_GAP * n:
        return f"it answered {_cut(shown)!r} on {count} of {n} rows (the labels: {in_labels})"
    shape, shaped = Counter(_answer_format(s) for s in seconds).most_common(1)[0]
    shaped_labels = sum(_answer_format(label) == shape for label in labels)
    agreement = sum(a == b for a, b in zip(label_positive, second_positive, strict=True)) / n
    # another format that still puts rows on the labels' side (e.g. "Sentiment: Negative") is no fault
    if shape and shaped >= BROKEN_SHARE * n and shaped_labels <= FORMAT_LABEL_SHARE * n and agreement < 0.75:
        return (
            f"{shaped} of {n} answers begin with {shape!r} (the labels: {shaped_labels}): a different "
            f"answer format, e.g. {_cut(next(s.strip() for s in seconds if _answer_format(s) == shape))!r}"
        )
    for side, name in ((True, "positive"), (False, "negative")):
        sided = sum(p == side for p in second_positive)
        sided_labels = sum(p == side for p in label_positive)
        if sided >= BROKEN_SHARE * n and sided_labels <= sided - BROKEN_GAP * n:
            return f"it put {sided} of {n} rows on the {name} side (the labels: {sided_labels}), e.g. {_cut(shown)!r}"
    return None


def one_answer(seconds: Sequence[str]) -> str | None:
    """The answer when the second opinion gave the same one on every row (kappa is then 0 by
    construction, whatever the labels' quality), else None."""
    answers = {_normal(s) for s in seconds}
    return seconds[0].strip() if seconds and len(answers) == 1 else None


def _cut(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
