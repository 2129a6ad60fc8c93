"""A source span as read from Braintrust or an NDJSON export, and the facet calls parsed from it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Bucket = Literal["positive", "negative"]
BucketSource = Literal["final_facet", "production_output"]


class SourceSpan(BaseModel):
    """One facet LLM span row. Fields are already JSON-decoded where they arrived as strings."""

    id: str
    root_span_id: str
    span_id: str | None = None
    created: str | None = None
    input: Any = None
    output: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    span_attributes: dict[str, Any] = Field(default_factory=dict)


class FacetCall(BaseModel):
    """One facet extraction found in a span: one suffix group (or the single prompt)."""

    source_row_id: str
    root_span_id: str
    span_id: str | None = None
    created: str | None = None
    source_model: str | None = None
    facet_name: str
    group_index: int = 0
    # the wrapper messages exactly as sent, with the trace text in place
    messages: list[dict[str, Any]]
    # the wrapper messages with the trace text replaced by {{preprocessed_text}}
    template_messages: list[dict[str, Any]]
    # this call's facet prompt: one suffix group (list of messages)
    suffix_messages: list[dict[str, Any]]
    prompt_text: str
    preprocessed_text: str
    production_output: str
    weak_bucket: Bucket | None = None
    weak_bucket_source: BucketSource | None = None
    final_facet_value: str | None = None


class ParseStats(BaseModel):
    rows_seen: int = 0
    rows_without_ids: int = 0
    rows_unparseable: int = 0
    calls: int = 0
    failures: list[dict[str, str]] = Field(default_factory=list)
