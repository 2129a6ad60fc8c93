"""The answer to a raw SQL query (`facetopt inspect sql`), the same shape on either backend."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SqlResult(BaseModel):
    backend: str
    query: str
    executed: str | None = None  # the DuckDB query run locally
    columns: list[str] = Field(default_factory=list)
    rows: list[dict[str, Any]] = Field(default_factory=list)
    cursor: str | None = None  # Braintrust: more rows exist (page with OFFSET '<cursor>')
    notes: list[str] = Field(default_factory=list)
