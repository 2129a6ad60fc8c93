"""The facet name of a call: explicit name, metadata, a prompt phrase, keyword guesses, then a default."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

METADATA_NAME_KEYS = ("facet_name", "facet", "sampled_facet_name")

_QUOTED_FACET_RE = re.compile(
    r"extracting\s+(?:an?\s+|the\s+)?[\"“”'‘’]([^\"“”'‘’\n]+)[\"“”'‘’]\s+facet",
    re.IGNORECASE,
)


def facet_name_for(
    prompt_text: str,
    metadata: Mapping[str, Any] | None,
    explicit: str | None,
    group_index: int,
    group_count: int,
) -> str:
    """The five rules of the module docstring, first match wins; the result is lower-cased."""
    if explicit and explicit.strip():
        return explicit.strip().lower()
    from_metadata = _name_from_metadata(metadata or {}, group_index)
    if from_metadata:
        return from_metadata.lower()
    quoted = _QUOTED_FACET_RE.search(prompt_text or "")
    if quoted and quoted.group(1).strip():
        return re.sub(r"\s+", "-", quoted.group(1).strip()).lower()
    guessed = guess_from_keywords(prompt_text or "")
    if guessed:
        return guessed
    return "facet" if group_count <= 1 else f"facet-{group_index + 1}"


def _name_from_metadata(metadata: Mapping[str, Any], group_index: int) -> str | None:
    for key in METADATA_NAME_KEYS:
        value = metadata.get(key)
        # a list of names, one per suffix group, is read positionally
        if isinstance(value, list):
            value = value[group_index] if 0 <= group_index < len(value) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def guess_from_keywords(prompt_text: str) -> str | None:
    text = prompt_text.lower()
    if "no response" in text and "leaked reasoning" in text:
        return "issues"
    if all(word in text for word in ("negative", "neutral", "positive", "mixed")):
        return "sentiment"
    if "user wants to" in text or "overall request or goal" in text:
        return "task"
    return None
