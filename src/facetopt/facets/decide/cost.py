"""Prices and token estimates: what a run of paid model calls costs, before and after.

The default prices are ASSUMPTIONS (US dollars per million tokens, input / output), not quotes:
check your provider's price list and override them with FACET_OPTIMIZER_PRICES, e.g.
`gpt-5.4=1.25/10,brain-facet-1=0.5/2`. A model not in the table uses the `*` entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from facetopt.domain.cost import RoleUsage
from facetopt.settings import parse_prices

__all__ = ["parse_prices"]  # re-exported: prices are parsed where settings are checked

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5.4": (1.25, 10.0),
    "brain-facet-1": (0.50, 2.00),
    "brain-facet-2": (0.50, 2.00),
    "*": (1.25, 10.0),
}
# Estimates only: current BPE tokenizers average about 4 to 5 characters of English per token.
CHARS_PER_TOKEN = 4.5
TOKENS_PER_MESSAGE = 4  # role and separators
# A label is one short line, e.g. `Negative - the user expresses frustration ("wrong")`: about 13 tokens.
EXPECTED_LABEL_TOKENS = 16
# A facet model's answer is the same kind of line.
EXPECTED_FACET_TOKENS = EXPECTED_LABEL_TOKENS
# autoevals' Factuality: its template and function schema (about 1,700 characters) around the
# question, the expert answer and the submission; the reply a short reasoning and a choice.
JUDGE_TEMPLATE_TOKENS = 380
EXPECTED_JUDGE_TOKENS = 120


def price_for(model: str, overrides: Mapping[str, tuple[float, float]]) -> tuple[tuple[float, float], str]:
    """(input, output) dollars per million tokens for `model`, and where the price came from."""
    if model in overrides:
        return overrides[model], "settings"
    if model in DEFAULT_PRICES:
        return DEFAULT_PRICES[model], "default (assumption)"
    if "*" in overrides:
        return overrides["*"], "settings"
    return DEFAULT_PRICES["*"], "default (assumption)"


def cost_of(prompt_tokens: int, completion_tokens: int, price: tuple[float, float]) -> float:
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request, estimated from its text."""
    total = 0
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else str(content or "")
        total += TOKENS_PER_MESSAGE + estimate_text_tokens(text)
    return total


def describe_usage(usage: RoleUsage) -> str:
    """One line: role, model, calls (cached ones free), tokens and estimated dollars."""
    word = "estimated" if usage.estimated else "used"
    cached = f", {usage.cached_calls} cached (free)" if usage.cached_calls else ""
    return (
        f"{usage.role} {usage.model}: {usage.calls} calls{cached}, {usage.prompt_tokens} prompt + "
        f"{usage.completion_tokens} completion tokens {word}, about ${usage.cost_usd:.4f} "
        f"(prices: {usage.price_source})"
    )
