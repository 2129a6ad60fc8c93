"""Span sources as the dataset service sees them: a query, candidates, and final facet values
(the protocol, and the local NDJSON one; the Braintrust one is in braintrust_source.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass
class SourceQuery:
    source_models: list[str]
    created_after_sql: str
    created_before_sql: str
    extra_where_sql: str | None
    root_span_ids: list[str] | None
    limit: int | None

    def filters(self) -> dict:
        """Which spans: everything but the limit, as keyword arguments of the source clients."""
        return {
            "source_models": self.source_models,
            "created_after_sql": self.created_after_sql,
            "created_before_sql": self.created_before_sql,
            "extra_where_sql": self.extra_where_sql,
            "root_span_ids": self.root_span_ids,
        }


@dataclass
class SourceInfo:
    project_name: str
    project_id: str
    org: str | None = None
    app_url: str = "https://www.braintrust.dev"
    description: str = ""
    notes: list[str] = field(default_factory=list)


class SpanSource(Protocol):
    """Where `dataset create` reads facet spans (NDJSON exports, or a Braintrust project)."""

    info: SourceInfo

    @property
    def skipped_lines(self) -> int:
        """Source lines that were skipped (not JSON, too long, not UTF-8)."""
        ...

    @property
    def skipped_line_reasons(self) -> dict[str, int]:
        """Of those, lines left out before reading, by reason."""
        ...

    @property
    def rows_without_ids(self) -> int:
        """Source rows without a string id / root_span_id."""
        ...

    def bad_created(self) -> tuple[int, str | None]:
        """Spans whose `created` is not a timestamp, and one example (Braintrust has none)."""
        ...

    def candidate_sql(self, query: SourceQuery) -> str:
        """The candidate query as it will be sent (the first page's, for a paged source)."""
        ...

    def candidates(self, query: SourceQuery) -> Iterator[dict]: ...

    def sent_sql(self) -> str:
        """Every candidate query actually sent ("" when `candidate_sql` says it all); the run's
        query.sql then holds those."""
        ...

    def final_facets_sql(self, root_span_ids: list[str]) -> str: ...

    def final_facets(self, root_span_ids: list[str]) -> list[dict]: ...

    def sent_facets_sql(self) -> str:
        """Every final-facets query actually sent ("" when `final_facets_sql` says it all)."""
        ...


class LocalSpanSource:
    """NDJSON exports (or the bundled sample) read with DuckDB."""

    def __init__(self, paths: list[Path], project_name: str | None):
        from facetopt.clients.local.source import SAMPLE_NAME, LocalSource, load_sample_spans

        notes = []
        if not paths:
            paths = [load_sample_spans()]
            notes.append("no --source-file given: reading the bundled sample traces")
            project_name = project_name or SAMPLE_NAME
        self._source = LocalSource(paths)
        name = project_name or paths[0].stem
        self.info = SourceInfo(
            project_name=name,
            project_id=name,
            description=", ".join(str(p) for p in paths),
            notes=notes,
        )

    @property
    def skipped_lines(self) -> int:
        return self._source.skipped_lines

    @property
    def skipped_line_reasons(self) -> dict[str, int]:
        return self._source.skipped_line_reasons

    @property
    def rows_without_ids(self) -> int:
        return self._source.rows_without_ids

    def bad_created(self) -> tuple[int, str | None]:
        return self._source.bad_created()

    def candidate_sql(self, query: SourceQuery) -> str:
        return self._source.candidate_query(**query.filters(), limit=query.limit)

    def candidates(self, query: SourceQuery) -> Iterator[dict]:
        return self._source.fetch_candidates(**query.filters(), limit=query.limit)

    def final_facets_sql(self, root_span_ids: list[str]) -> str:
        return self._source.facets_query(root_span_ids)

    def final_facets(self, root_span_ids: list[str]) -> list[dict]:
        return self._source.fetch_final_facets(root_span_ids)

    def sent_sql(self) -> str:
        return ""  # one query, exactly as candidate_sql wrote it

    def sent_facets_sql(self) -> str:
        return ""
