"""The simulated Factuality judge: picks an autoevals choice by comparing expert and submitted answers.

The autoevals Factuality prompt puts the two answers between `[Expert]:` / `[Submission]:` and a
line of asterisks. Both are normalised (reasoning blocks dropped, lower-cased, punctuation removed,
spaces collapsed) and compared; the first rule that applies wins:

1. equal                                                    -> C (same details)
2. exactly one is none-like (the dataset's none-like rule)  -> D (disagreement)
3. both none-like (e.g. "NONE" and "No match")              -> E (differences do not matter)
4. both open with a sentiment label and the labels differ   -> D
5. the same content words (ignoring stopwords and order)    -> E
6. submission's content words within the expert's           -> A (subset)
7. expert's content words within the submission's           -> B (superset)
8. some content word shared                                 -> A if the submission is shorter, else B
9. nothing shared                                           -> D

For a classifier whose choices are not A-E, the first allowed choice is returned.
"""

from __future__ import annotations

import re

from facetopt.facets.data.text import is_none_like, strip_think

FACTUALITY_CHOICES = ("A", "B", "C", "D", "E")
_EXPERT_RE = re.compile(r"\[Expert\]:\s*(.*?)\s*\n?\*{5,}", re.DOTALL)
_SUBMISSION_RE = re.compile(r"\[Submission\]:\s*(.*?)\s*\n?\*{5,}", re.DOTALL)
_SENTIMENT_RE = re.compile(r"^\W*(?:sentiment:|label:)?\s*(negative|neutral|positive|mixed)\b")
_STOPWORDS = frozenset(
    "a an the to of and or in on for with is are was were be been it its this that user users assistant "
    "wants want their they them his her he she i you your my me at by as from about".split()
)


def normalise_answer(text: str) -> str:
    text = strip_think(text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def _content_words(normalised: str) -> set[str]:
    return {w for w in normalised.split() if w not in _STOPWORDS}


def factuality_choice(expert: str, submission: str) -> tuple[str, str]:
    """(choice, reasons) by the rules in the module docstring."""
    exp_norm, sub_norm = normalise_answer(expert), normalise_answer(submission)
    if exp_norm == sub_norm:
        return "C", "The submission states the same details as the expert answer."
    exp_none, sub_none = is_none_like(strip_think(expert)), is_none_like(strip_think(submission))
    if exp_none != sub_none:
        return "D", "One answer reports no match while the other reports a finding."
    if exp_none and sub_none:
        return "E", "Both answers report no match; only the wording differs."
    exp_label, sub_label = _SENTIMENT_RE.match(exp_norm), _SENTIMENT_RE.match(sub_norm)
    if exp_label and sub_label and exp_label.group(1) != sub_label.group(1):
        return "D", f"The expert says {exp_label.group(1)}, the submission says {sub_label.group(1)}."
    exp_words, sub_words = _content_words(exp_norm), _content_words(sub_norm)
    if exp_words == sub_words:
        return "E", "The answers differ only in wording that does not change the facts."
    if sub_words and sub_words <= exp_words:
        return "A", "The submission is a consistent subset of the expert answer."
    if exp_words and exp_words <= sub_words:
        return "B", "The submission is a consistent superset of the expert answer."
    if exp_words & sub_words:
        if len(sub_words) <= len(exp_words):
            return "A", "The submission covers part of the expert answer."
        return "B", "The submission covers the expert answer's point and adds more."
    return "D", "The submission and the expert answer describe different things."


def judge_choice(prompt_text: str, allowed: list[str] | None) -> tuple[str, str]:
    """Choose for a `select_choice` classifier given its rendered prompt and the tool's choice enum."""
    allowed = allowed or list(FACTUALITY_CHOICES)
    expert, submission = _EXPERT_RE.search(prompt_text), _SUBMISSION_RE.search(prompt_text)
    if expert is None or submission is None or not set(FACTUALITY_CHOICES) <= set(allowed):
        return allowed[0], "The simulated judge only understands the Factuality prompt."
    return factuality_choice(expert.group(1), submission.group(1))
