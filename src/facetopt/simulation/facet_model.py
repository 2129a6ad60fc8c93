"""The simulated facet model under evaluation (`brain-facet-*`): the labeller's value, with two failures.

1. It answers the user instead of producing the facet value, as real facet models do when the
   prompt never says the conversation is data (`answers_the_user`).
2. A little deterministic noise flips a borderline decision (`facet_model_value`).

Both are functions of the prompt text and the trace only (sha256, no random state), never a match
on a particular prompt edit, so a prompt change is judged by what it says.
"""

from __future__ import annotations

import hashlib
import re

from facetopt.facets.data.text import is_none_like
from facetopt.simulation.labeller import facet_kind, labeller_value, parse_turns, texts_of

# A "data boundary" tells the model the conversation is data, not a request, and to return only the value.
BOUNDARY_PATTERNS = (
    r"\bis data\b",
    r"\bas data\b",
    r"\bnot a request\b",
    r"\bnot requests\b",
    r"\bdo not answer\b",
    r"\bdon'?t answer\b",
    r"\bdo not respond to\b",
    r"\bnot instructions?\b",
    r"\bnot an instruction\b",
    r"\bonly (?:return|output)\b",
    r"\b(?:return|output|respond with|reply with) only\b",
)
_BOUNDARY_RE = re.compile("|".join(BOUNDARY_PATTERNS), re.IGNORECASE)
ANSWER_RATE_WITHOUT_BOUNDARY = 60  # percent of traces ending in a user question
ANSWER_RATE_WITH_BOUNDARY = 5
NOISE_RATE = 6  # percent of (trace, prompt) pairs whose borderline decision flips
THINK_RATE = 20  # percent of replies that open with a <think> block (callers must strip it)


def has_data_boundary(prompt: str) -> bool:
    return _BOUNDARY_RE.search(prompt) is not None


def percent(text: str) -> int:
    """A stable number in [0, 100) for a text: sha256 as an integer, modulo 100."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 100


def answers_the_user(trace: str, prompt: str, instructions: str = "") -> bool:
    """True when the facet model replies to the user's last question instead of producing the value.

    That happens when the trace's last user turn ends with "?" and sha256(trace) % 100 falls under
    ANSWER_RATE_WITHOUT_BOUNDARY, or under ANSWER_RATE_WITH_BOUNDARY when the facet prompt or the
    wrapper instructions (never the trace) hold a data-boundary statement (BOUNDARY_PATTERNS).
    """
    users = texts_of(parse_turns(trace), "user")
    if not users or not users[-1].rstrip().endswith("?"):
        return False
    bounded = has_data_boundary(prompt) or has_data_boundary(instructions)
    return percent(trace) < (ANSWER_RATE_WITH_BOUNDARY if bounded else ANSWER_RATE_WITHOUT_BOUNDARY)


def facet_model_value(trace: str, prompt: str, instructions: str = "") -> str:
    """The labeller's value, except (1) it answers the user (see `answers_the_user`) and (2) a noise flip.

    The noise: when sha256("noise:" + trace + prompt) % 100 < NOISE_RATE, a positive value becomes
    `NONE` and a none-like one becomes a vague positive for the facet's kind.
    """
    turns = parse_turns(trace)
    if answers_the_user(trace, prompt, instructions):
        question = texts_of(turns, "user")[-1].strip().splitlines()[-1][:160]
        return (
            f'Sure! Happy to help with your question ("{question}"). Here is what you can do: check the '
            "details in your account settings, follow the steps shown there, and contact support if anything "
            "is still unclear. Let me know if there is anything else I can help with!"
        )
    value = labeller_value(trace, prompt)
    if percent("noise:" + trace + prompt) < NOISE_RATE:
        if not is_none_like(value):
            return "NONE"
        return {
            "issues": "The assistant's response could have been more detailed.",
            "sentiment": "Neutral - the user shows no clear emotion",
            "task": "User wants help",
        }.get(facet_kind(prompt), "General conversation")
    return value


def with_think_block(trace: str, prompt: str, value: str) -> str:
    """Some facet-model replies open with a reasoning block, as reasoning models do."""
    if percent("think:" + trace + prompt) < THINK_RATE:
        return f"<think>Reading the conversation to extract the {facet_kind(prompt)} facet.</think>\n{value}"
    return value
