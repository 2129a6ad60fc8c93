"""One facet's prompt as the prompt file holds it, and the rules that read it: its text, its hash
(the prompt version id) and the wrapper messages filled in with a trace."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from facetopt.facets.data.rows import prompt_sha256

DEFAULT_PLACEHOLDER = "preprocessed_text"
SCHEMA_VERSION = 1
FACET_KEYS = ("facet_name", "prompt_sha256", "placeholder", "messages", "suffix_messages", "no_match_pattern")


def _literal_text(content: Any) -> str:
    # not facets.text.content_text: that one decodes JSON-looking strings, and the prompt hash
    # must cover the text exactly as the user wrote it
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def join_prompt_text(groups: list[list[dict[str, Any]]]) -> str:
    """The prompt text of suffix groups: every message content, joined by a blank line."""
    return "\n\n".join(_literal_text(m.get("content")) for group in groups for m in group)


class FacetPrompt(BaseModel):
    """One facet's prompt: wrapper messages around the trace plus the suffix prompt the user edits."""

    facet_name: str
    prompt_sha256: str = ""
    placeholder: str = DEFAULT_PLACEHOLDER
    messages: list[dict[str, Any]] = Field(default_factory=list)
    suffix_messages: list[list[dict[str, Any]]]
    no_match_pattern: str | None = None

    @field_validator("suffix_messages", mode="before")
    @classmethod
    def _as_groups(cls, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return [value]  # a flat list of messages is one group
        return value

    @model_validator(mode="after")
    def _hash_matches_text(self) -> FacetPrompt:
        computed = prompt_sha256(self.prompt_text)
        if self.prompt_sha256 and self.prompt_sha256 != computed:
            raise ValueError(f"prompt_sha256 of facet {self.facet_name!r} does not match its prompt text")
        self.prompt_sha256 = computed
        return self

    @property
    def prompt_text(self) -> str:
        return join_prompt_text(self.suffix_messages)

    @property
    def compiled_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.no_match_pattern, re.IGNORECASE) if self.no_match_pattern else None

    @property
    def placeholder_regex(self) -> re.Pattern[str]:
        return re.compile(r"\{\{\s*" + re.escape(self.placeholder) + r"\s*\}\}")


def render_messages(facet: FacetPrompt, preprocessed_text: str) -> list[dict[str, Any]]:
    """The wrapper messages with `{{preprocessed_text}}` (spaces inside the braces allowed) filled in."""
    pattern = facet.placeholder_regex

    def fill(text: str) -> str:
        return pattern.sub(lambda _: preprocessed_text, text)

    rendered = []
    for message in facet.messages:
        content = message.get("content")
        if isinstance(content, str):
            content = fill(content)
        elif isinstance(content, list):
            content = [
                {**p, "text": fill(p["text"])}
                if isinstance(p, dict) and isinstance(p.get("text"), str)
                else p
                for p in content
            ]
        rendered.append({**message, "content": content})
    return rendered
