"""Scoring a facet prompt on train rows in-process: the request and cache key are the eval task's
(so `facetopt eval` and the optimiser share cached outputs), the scores are the rule scorers of
facets/decide/scorers.py; no judge (screening decides on the target metric alone)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from facetopt.clients.prompt_file import FacetPrompt
from facetopt.domain.dataset import DatasetRow
from facetopt.facets.data.text import is_none_like
from facetopt.facets.decide.scorers import binary_decision_match, negative_specificity, positive_recall
from facetopt.facets.prompts.replies import value_or_error
from facetopt.services.eval.task import facet_request
from facetopt.services.optimize.calls import Batch, Caller

SCORERS = {
    "binary_decision_match": binary_decision_match,
    "positive_recall": positive_recall,
    "negative_specificity": negative_specificity,
}


@dataclass
class RowScore:
    row: DatasetRow
    output: str
    error: str | None
    value: float | None  # the target metric; None where it does not apply (e.g. recall on a negative)
    kind: str | None  # fp, fn or error when the binary decision failed


@dataclass
class Scored:
    rows: list[RowScore]
    batch: Batch

    @property
    def score(self) -> float | None:
        values = [r.value for r in self.rows if r.value is not None]
        return sum(values) / len(values) if values else None

    def failures(self) -> list[RowScore]:
        return [r for r in self.rows if r.kind is not None]


def minibatch(rows: list[DatasetRow], size: int, seed: int) -> list[DatasetRow]:
    """A seeded sample of `size` rows (all when fewer), in id order."""
    ordered = sorted(rows, key=lambda r: r.id)
    if size >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, size), key=lambda r: r.id)


def score_prompt(
    caller: Caller, facet: FacetPrompt, rows: list[DatasetRow], metric: str, model: str, max_tokens: int
) -> Scored:
    requests = [
        facet_request(facet, str(row.input.get("preprocessed_text") or ""), model, max_tokens, row.id)
        for row in rows
    ]
    batch = caller.run(requests, "model")
    pattern = facet.no_match_pattern
    scored = []
    for row, request in zip(rows, requests, strict=True):
        result = batch.results[request.key]
        output, error = value_or_error(result.text) if result.ok else ("", result.error)
        expected_negative = is_none_like(row.expected, pattern)
        if error:
            value = None if SCORERS[metric](output, row.expected, pattern) is None else 0.0
            kind: str | None = "error"
        else:
            value = SCORERS[metric](output, row.expected, pattern)
            matched = binary_decision_match(output, row.expected, pattern)
            kind = None if matched else ("fp" if expected_negative else "fn")
        scored.append(RowScore(row, output, error, value, kind))
    return Scored(scored, batch)
