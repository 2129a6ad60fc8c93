"""Duplicate conversations in a comparison: rows of one facet whose preprocessed text is the same
once whitespace is normalised are one observation, not several (their results are not independent).

compare keeps one pair per group, the group's first row by dataset row id (docs/compare.md says why).
"""

from __future__ import annotations

from collections.abc import Sequence

from facetopt.domain.experiments import EvalRow
from facetopt.facets.data.placement import conversation_key


def _row_key(row: EvalRow) -> str | None:
    text = row.input.get("preprocessed_text") if isinstance(row.input, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None  # no conversation to compare: the row stands alone
    return conversation_key(row.facet_name, text)  # the key the split groups duplicates by


def fold_duplicate_pairs(
    baseline: Sequence[EvalRow], candidate: Sequence[EvalRow]
) -> tuple[list[EvalRow], list[EvalRow], dict[str, int]]:
    """Paired rows (same order) with each duplicate group reduced to its first row by id; and the
    rows folded away per facet (as the baseline names it)."""
    first_of: dict[str, str] = {}
    for row in baseline:
        key = _row_key(row)
        if key is not None and (key not in first_of or row.id < first_of[key]):
            first_of[key] = row.id
    kept_left: list[EvalRow] = []
    kept_right: list[EvalRow] = []
    folded: dict[str, int] = {}
    for left, right in zip(baseline, candidate, strict=True):
        key = _row_key(left)
        if key is not None and first_of[key] != left.id:
            folded[left.facet_name] = folded.get(left.facet_name, 0) + 1
            continue
        kept_left.append(left)
        kept_right.append(right)
    return kept_left, kept_right, folded
