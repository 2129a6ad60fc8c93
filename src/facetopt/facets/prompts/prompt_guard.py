"""The optimiser's guard: pure rules that reject a proposed prompt before any row is scored.

A candidate is rejected, with every reason recorded, when
- its added text copies training data: a run of COPY_RUN (8) or more words, found in the text the
  candidate adds to its parent, that also occurs in a training row's trace or label;
- it lost a no-match token: a word of the parent prompt that the facet's `no_match_pattern` (else
  the default none-like rule, upper-case or marked words only, e.g. `NONE`) calls no-match is gone;
- it grew the facet's original prompt by more than MAX_GROWTH (half its length in characters).
Words compare case-insensitively, punctuation ignored.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from facetopt.facets.data.text import is_none_like

COPY_RUN = 8
MAX_GROWTH = 0.5
_WORD_RE = re.compile(r"[\w']+")


@dataclass(frozen=True)
class GuardDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # copies_training_data, lost_no_match_token, grew_too_much


def words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD_RE.findall(text)]


def added_spans(parent: str, candidate: str) -> list[list[str]]:
    """The word runs the candidate has that the parent lacks (inserted or replacing)."""
    old, new = words(parent), words(candidate)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [new[j1:j2] for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("insert", "replace")]


def _runs(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def copied_run(parent: str, candidate: str, sources: Iterable[str], n: int = COPY_RUN) -> str | None:
    """The first run of `n` words the candidate added that a source text holds, else None."""
    added = set().union(*(_runs(span, n) for span in added_spans(parent, candidate)))
    if not added:
        return None
    for source in sources:
        found = added & _runs(words(source), n)
        if found:
            return " ".join(min(found))
    return None


def no_match_tokens(prompt: str, no_match_pattern: str | None) -> set[str]:
    """Words of the prompt that the facet's no-match rule matches (e.g. `NONE`, `no_match`).

    Without a pattern, only words written as tokens count (upper-case or with `_`), not the
    English word "none"."""
    found = set()
    for token in re.findall(r"[\w-]+", prompt):
        if not is_none_like(token, no_match_pattern):
            continue
        if no_match_pattern or not token.islower() or "_" in token:
            found.add(token)
    return found


def guard_candidate(
    original: str,
    parent: str,
    candidate: str,
    training_texts: Iterable[str],
    no_match_pattern: str | None = None,
) -> GuardDecision:
    """Every rule the candidate breaks: copying training data, a lost no-match token, growth."""
    reasons: list[str] = []
    rules: list[str] = []
    copied = copied_run(parent, candidate, training_texts)
    if copied is not None:
        rules.append("copies_training_data")
        reasons.append(
            f"copies training data: the added text repeats {COPY_RUN}+ words of a training row ({copied!r})"
        )
    lost = sorted(t for t in no_match_tokens(parent, no_match_pattern) if t not in candidate)
    if lost:
        rules.append("lost_no_match_token")
        reasons.append(
            f"lost the no-match token {', '.join(lost)}: the model would no longer be told how to say no match"
        )
    limit = len(original) * (1 + MAX_GROWTH)
    if len(candidate) > limit:
        rules.append("grew_too_much")
        growth = len(candidate) / max(1, len(original)) - 1
        reasons.append(
            f"grew the prompt by {growth:.0%} (more than {MAX_GROWTH:.0%} of the original {len(original)} characters)"
        )
    return GuardDecision(not rules, reasons, rules)
