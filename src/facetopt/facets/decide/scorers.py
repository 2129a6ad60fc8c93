"""Per-row eval scores. A score that does not apply is None, never 0."""

from __future__ import annotations

import re

from facetopt.facets.data.text import is_none_like, strip_think

SENTIMENT_LABELS = ("Negative", "Neutral", "Positive", "Mixed")
SENTIMENT_FACET = "sentiment"

_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*•+#>]+|\d+[.)])\s*")
_QUOTES = "\"'`“”‘’*_"
_LABEL_PREFIX_RE = re.compile(r"^\s*(?:sentiment|label)\s*[:=\-–]\s*", re.IGNORECASE)
_LABEL_RE = re.compile(r"^(negative|neutral|positive|mixed)\b", re.IGNORECASE)


def _output_is_none_like(output: str | None, pattern: str | None) -> bool:
    return is_none_like(strip_think(output), pattern)


def is_none_like_output(output: str | None, pattern: str | None = None) -> bool:
    """The model's answer is negative (none-like once its thinking is stripped)."""
    return _output_is_none_like(output, pattern)


def is_none_like_expected(expected: str | None, pattern: str | None = None) -> bool:
    return is_none_like(expected, pattern)


def binary_decision_match(
    output: str | None, expected: str | None, pattern: str | None = None
) -> float | None:
    """1 when output and expected agree on none-like or not; None without an expected value."""
    if expected is None:
        return None
    return 1.0 if _output_is_none_like(output, pattern) == is_none_like(expected, pattern) else 0.0


def positive_recall(output: str | None, expected: str | None, pattern: str | None = None) -> float | None:
    """Only rows whose expected is positive: 1 when the output is positive too."""
    if expected is None or is_none_like(expected, pattern):
        return None
    return 0.0 if _output_is_none_like(output, pattern) else 1.0


def negative_specificity(
    output: str | None, expected: str | None, pattern: str | None = None
) -> float | None:
    """Only rows whose expected is negative: 1 when the output is negative too."""
    if expected is None or not is_none_like(expected, pattern):
        return None
    return 1.0 if _output_is_none_like(output, pattern) else 0.0


def sentiment_label(text: str | None) -> str | None:
    """Negative/Neutral/Positive/Mixed at the start of a text, after list markers, quotes and a prefix."""
    if not text:
        return None
    remaining = strip_think(text)
    for _ in range(4):  # markers, quotes and prefixes may nest: `- "Sentiment: **Mixed**"`
        before = remaining
        remaining = _LIST_MARKER_RE.sub("", remaining, count=1)
        remaining = remaining.lstrip().lstrip(_QUOTES).lstrip()
        remaining = _LABEL_PREFIX_RE.sub("", remaining, count=1)
        if remaining == before:
            break
    match = _LABEL_RE.match(remaining)
    return match.group(1).capitalize() if match else None


def sentiment_label_correct(facet_name: str, output: str | None, expected: str | None) -> float | None:
    """Sentiment rows whose expected starts with a label: 1 when the output's label is the same."""
    if facet_name.strip().casefold() != SENTIMENT_FACET:
        return None
    expected_label = sentiment_label(expected)
    if expected_label is None:
        return None
    return 1.0 if sentiment_label(output) == expected_label else 0.0
