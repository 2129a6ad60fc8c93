"""Braintrust for `facetopt dataset create`: spans read with SQL from a Braintrust project, and
the logins per org (the backend in services/backends/braintrust.py builds on these)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from facetopt.errors import ConfigError
from facetopt.services.backends.sources import SourceInfo, SourceQuery
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.clients.braintrust import BraintrustConnection, Project

FACETS_BATCH = 100


def joined_sql(texts: Sequence[str]) -> str:
    """Several queries as one SQL script, in the order they were sent."""
    return ";\n\n".join(texts)


class BraintrustSpanSource:
    """Facet LLM spans of one Braintrust project, read through `/btql` page by page.

    `sent_sql()` / `sent_facets_sql()` give every query actually sent, for the run's
    query.sql and facets_query.sql."""

    def __init__(self, conn: BraintrustConnection, project: Project):
        self._conn = conn
        self._project = project
        self.info = SourceInfo(
            project_name=project.name,
            project_id=project.id,
            org=conn.org_name,
            app_url=conn.app_url,
            description=f"Braintrust project {project.name!r} (org {conn.org_name!r})",
        )
        self.skipped_lines = 0  # no files: the parser counts rows without ids itself
        self.skipped_line_reasons: dict[str, int] = {}
        self.rows_without_ids = 0
        self._sent: list[str] = []
        self._facets_sent: list[str] = []

    def bad_created(self) -> tuple[int, str | None]:
        return 0, None  # Braintrust stores `created` as a timestamp

    def candidate_sql(self, query: SourceQuery) -> str:
        """The first page's query, exactly as it will be sent."""
        from facetopt.clients.braintrust import source_query_sql
        from facetopt.clients.braintrust.sql import PAGE_LIMIT

        limit = query.limit if query.root_span_ids is None else None
        page = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit)
        return source_query_sql(self._project.id, page_limit=page, **query.filters())

    def candidates(self, query: SourceQuery) -> Iterator[dict]:
        from facetopt.clients.braintrust import fetch_source_spans

        fetch = fetch_source_spans(self._conn, self._project.id, limit=query.limit, **query.filters())
        self._sent = fetch.sql_texts  # filled in as pages are requested
        return fetch

    def sent_sql(self) -> str:
        return joined_sql(self._sent)

    def final_facets_sql(self, root_span_ids: list[str]) -> str:
        """The first query of each batch of about 100 traces."""
        from facetopt.clients.braintrust import final_facets_sql

        ids = list(dict.fromkeys(root_span_ids))
        batches = [ids[i : i + FACETS_BATCH] for i in range(0, len(ids), FACETS_BATCH)]
        return joined_sql([final_facets_sql(self._project.id, batch) for batch in batches])

    def final_facets(self, root_span_ids: list[str]) -> list[dict]:
        from facetopt.clients.braintrust import fetch_final_facets

        rows, self._facets_sent = fetch_final_facets(
            self._conn, self._project.id, root_span_ids, batch=FACETS_BATCH
        )
        return rows

    def sent_facets_sql(self) -> str:
        return joined_sql(self._facets_sent)


def proxy_base_url(proxy_url: str) -> str:
    """The OpenAI-compatible base of the org's AI proxy as the login names it."""
    base = proxy_url.rstrip("/")
    return base if base.endswith(("/v1", "/v1/proxy")) else base + "/v1"


def connect_with(settings: Settings, org_name: str | None) -> BraintrustConnection:
    from facetopt.clients.braintrust import connect

    if settings.braintrust_api_key is None or not settings.braintrust_api_key.get_secret_value().strip():
        raise ConfigError(
            "the braintrust backend needs a Braintrust API key, and none is set",
            hint="set BRAINTRUST_API_KEY (environment or .env), or use --backend local to work from "
            "span exports and the local store",
        )
    return connect(
        settings.braintrust_api_key,
        app_url=settings.braintrust_app_url,
        org_name=org_name,
        api_url_override=settings.braintrust_api_url,
    )


def target_connection(settings: Settings, source: BraintrustConnection | None = None) -> BraintrustConnection:
    """The target org's login: `--target-org`, else the key's default org. Reuses `source` when
    it is already logged in to that org (one SDK state per org)."""
    same_default = settings.target_org is None and settings.source_org is None
    if source is not None and (same_default or settings.target_org == source.org_name):
        return source
    return connect_with(settings, settings.target_org)
