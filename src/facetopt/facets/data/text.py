"""Text rules shared by parsing, sampling, splitting and scoring: decoding, flattening, none-like values."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from facetopt.errors import InputError

DATA_MARKERS = ("Here is the data to analyze:", "Here is the data to analyse:")
_DATA_MARKER_RE = re.compile(r"here is the data to analy[sz]e:", re.IGNORECASE)

PLACEHOLDER = "{{preprocessed_text}}"

# The one none-like rule, used everywhere: exact values after normalising, or a leading word.
NONE_LIKE_VALUES = frozenset({"", "none", "no match", "null", "skipped", "n/a", "na", "not applicable"})
_NONE_LIKE_PREFIX_RE = re.compile(r"^(?:none|no match|skipped)\b")

_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_LEADING_CLOSE_RE = re.compile(r"^.*?</think>", re.IGNORECASE | re.DOTALL)
_UNCLOSED_OPEN_RE = re.compile(r"<think>.*\Z", re.IGNORECASE | re.DOTALL)


def decode_jsonish(value: Any) -> Any:
    """Decode a string that looks like a JSON object or array; anything else comes back unchanged."""
    if not isinstance(value, str):
        return value
    stripped = value.lstrip()
    if not stripped.startswith(("{", "[")):
        return value
    try:
        return json.loads(stripped)
    except ValueError:
        return value


def content_text(content: Any) -> str:
    """Flatten a chat message `content` (a string or a list of parts) to plain text."""
    content = decode_jsonish(content)
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return _part_text(content) or ""
    if isinstance(content, list):
        texts = [text for text in (_part_text(part) for part in content) if text is not None]
        return "\n".join(texts)
    return str(content)


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping):
        is_text = part.get("type", "text") in ("text", "input_text", "output_text")
        if is_text and isinstance(part.get("text"), str):
            return part["text"]
        return None  # images, audio, tool calls: not text
    return None


def strip_think(text: str | None) -> str:
    """Remove `<think>...</think>` blocks (and reasoning whose tag was never closed or opened), then trim."""
    if not text:
        return ""
    text = _THINK_BLOCK_RE.sub("", text)
    if re.search(r"</think>", text, re.IGNORECASE):
        # the opening tag was left off (some models only emit the closing one): drop everything before it
        text = _LEADING_CLOSE_RE.sub("", text, count=1)
    # an opening tag never closed: the rest is unfinished reasoning
    text = _UNCLOSED_OPEN_RE.sub("", text)
    return text.strip()


def find_data_marker(text: str) -> re.Match[str] | None:
    """The last `Here is the data to analyze:` marker in a text (either spelling, any case)."""
    matches = list(_DATA_MARKER_RE.finditer(text))
    return matches[-1] if matches else None


def text_after_marker(text: str) -> str | None:
    match = find_data_marker(text)
    if match is None:
        return None
    return text[match.end() :].strip()


def normalise_value(text: str | None) -> str:
    """Trim, lower-case, and turn `_` and `-` into spaces (the form the none-like rule compares)."""
    if text is None:
        return ""
    return str(text).strip().lower().replace("_", " ").replace("-", " ")


@lru_cache(maxsize=256)
def _compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InputError(
            f"invalid no_match_pattern {pattern!r}: {exc}",
            hint="no_match_pattern is a Python regular expression, matched case-insensitively",
        ) from exc


def is_none_like(value: str | None, no_match_pattern: str | None = None) -> bool:
    """True when a facet value means "no match" (a negative).

    An empty value (or None) is always none-like. With a facet's own `no_match_pattern`, a
    case-insensitive `re.search` on the trimmed value decides instead of the default rule.
    """
    trimmed = "" if value is None else str(value).strip()
    if not trimmed:
        return True
    if no_match_pattern:
        return _compile_pattern(no_match_pattern).search(trimmed) is not None
    normalised = normalise_value(trimmed)
    return normalised in NONE_LIKE_VALUES or _NONE_LIKE_PREFIX_RE.match(normalised) is not None


def bucket_of(value: str | None, no_match_pattern: str | None = None) -> Literal["positive", "negative"]:
    return "negative" if is_none_like(value, no_match_pattern) else "positive"


def pattern_for(patterns: Mapping[str, str] | None, facet_name: str) -> str | None:
    """A facet's no_match_pattern from a {facet name: pattern} mapping, names compared case-insensitively."""
    if not patterns:
        return None
    if facet_name in patterns:
        return patterns[facet_name] or None
    folded = facet_name.casefold()
    for name, pattern in patterns.items():
        if name.casefold() == folded:
            return pattern or None
    return None
