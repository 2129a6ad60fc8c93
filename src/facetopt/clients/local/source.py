"""The embedded span source: NDJSON span exports (`bt sync pull` output or any .jsonl) read with DuckDB.

Rows stream out of DuckDB in batches and are never all held in Python, so a 1 GB export is read in
bounded memory. Filters use Braintrust's SQL dialect (rewritten by `sql_dialect`), so the
`--created-after-sql` / `--extra-where-sql` values that work on Braintrust work here too.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facetopt.clients.braintrust.sql import source_query_sql
from facetopt.clients.local.line_screen import screen_file
from facetopt.clients.local.source_duckdb import (
    CANDIDATE_FIELDS,
    CHUNK_RANKS,
    COLUMNS,
    JSON_COLUMNS,
    SOURCE_HINT,
    SPAN_VIEW,
    CandidatePlan,
    as_text,
    check_gzip,
    facets_query_text,
    fetch_batch,
    first_line,
    flag_hint,
    load_ids,
    open_span_view,
    release_connection,
    rewritten_filter,
    run_query,
    span_files,
)
from facetopt.clients.local.sql_dialect import boolean_condition
from facetopt.errors import InputError, SourceError
from facetopt.sample import load_sample_spans

__all__ = [
    "JSON_COLUMNS",
    "SAMPLE_NAME",
    "SPAN_VIEW",
    "LocalSource",
    "facets_query_text",
    "load_sample_spans",
]

SAMPLE_NAME = "bundled sample"  # the project name reports give the bundled sample
LOCAL_PROJECT_ID = "local"


class LocalSource:
    """Spans from NDJSON files and folders, queried with DuckDB through the view `spans`."""

    def __init__(self, paths: list[Path], project_id: str = LOCAL_PROJECT_ID, memory_limit: str = "256MB"):
        self.project_id = project_id
        self.files = span_files([Path(p) for p in paths])
        for path in self.files:
            check_gzip(path)
        self._stats: tuple[int, int, int] | None = None
        self._bad_created: tuple[int, str | None] | None = None
        spill_dir = tempfile.mkdtemp(prefix="facetopt-duckdb-")
        screened = [screen_file(path, Path(spill_dir) / "clean") for path in self.files]
        self._lines = sum(s.lines for s in screened)
        self.skipped_line_reasons: dict[str, int] = {}
        for s in screened:
            for reason, count in s.skipped.items():
                self.skipped_line_reasons[reason] = self.skipped_line_reasons.get(reason, 0) + count
        self._con = open_span_view([s.path for s in screened], memory_limit, spill_dir)
        self._release = weakref.finalize(self, release_connection, self._con, spill_dir)
        if self._con.execute(f"SELECT 1 FROM {SPAN_VIEW} WHERE id IS NOT NULL LIMIT 1").fetchone() is None:
            self.close()
            raise SourceError(
                f"no spans in {', '.join(str(f) for f in self.files)}",
                hint=f"the files hold no JSON rows with an `id`; {SOURCE_HINT}",
            )

    def close(self) -> None:
        """Close DuckDB and remove its spill folder (also done when the source is garbage-collected)."""
        self._release()

    # -- counts for the report ---------------------------------------------------------------------

    @property
    def rows_read(self) -> int:
        return self._counts()[0]

    @property
    def skipped_lines(self) -> int:
        """Lines that are not a JSON object with span fields (malformed, truncated, not a span, too
        long or not UTF-8: `skipped_line_reasons` counts the last two)."""
        return self._counts()[1]

    @property
    def rows_without_ids(self) -> int:
        return self._counts()[2]

    def bad_created(self) -> tuple[int, str | None]:
        """Spans whose `created` is not a timestamp (no time window selects them), and one example."""
        if self._bad_created is None:
            count, example = self._con.execute(
                f"SELECT count(*), any_value(created_text) FROM {SPAN_VIEW}"
                " WHERE created IS NULL AND created_text IS NOT NULL AND id IS NOT NULL"
            ).fetchone()
            self._bad_created = int(count), None if example is None else str(example)
        return self._bad_created

    def _counts(self) -> tuple[int, int, int]:
        if self._stats is None:
            empty = " AND ".join(f"{name} IS NULL" for name in COLUMNS)
            rows, blank_rows, without_ids = self._con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {empty}),"
                f" count(*) FILTER (WHERE NOT ({empty}) AND (id IS NULL OR root_span_id IS NULL))"
                " FROM raw_spans"
            ).fetchone()
            # DuckDB turns a malformed line into an all-NULL row; a line it drops shows in the line count
            screened_out = sum(self.skipped_line_reasons.values())
            dropped = max(0, self._lines - screened_out - rows)
            self._stats = (rows - blank_rows, blank_rows + dropped + screened_out, without_ids)
        return self._stats

    # -- the source query --------------------------------------------------------------------------

    def candidate_query(
        self,
        source_models: list[str],
        created_after_sql: str,
        created_before_sql: str,
        extra_where_sql: str | None = None,
        root_span_ids: list[str] | None = None,
        limit: int | None = None,
    ) -> str:
        """The source query in Braintrust's dialect (as the Braintrust backend sends it), for query.sql."""
        page_limit = limit if root_span_ids is None else None
        return source_query_sql(
            self.project_id,
            source_models,
            created_after_sql,
            created_before_sql,
            extra_where_sql,
            root_span_ids,
            page_limit=page_limit,
        )

    def fetch_candidates(
        self,
        source_models: list[str],
        created_after_sql: str,
        created_before_sql: str,
        extra_where_sql: str | None = None,
        root_span_ids: list[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Facet LLM spans, newest first and limited; with root span ids, oldest first, no window or limit.

        The filters are checked before this returns, so a bad `--extra-where-sql` raises here.
        """
        conditions = [
            "id IS NOT NULL AND root_span_id IS NOT NULL",
            "json_extract_string(span_attributes, '$.type') = 'llm'",
            "list_contains($models, json_extract_string(metadata, '$.model'))",
        ]
        if root_span_ids is None:
            after = self._checked_time("--created-after-sql", created_after_sql)
            before = self._checked_time("--created-before-sql", created_before_sql)
            conditions += [f"created >= ({after})", f"created < ({before})"]
        else:
            conditions.append("root_span_id IN (SELECT root_span_id FROM wanted_roots)")
            limit = None
        user_flag = None
        if extra_where_sql and extra_where_sql.strip():
            user_flag = "--extra-where-sql"
            conditions.append(f"({self._checked_where(user_flag, extra_where_sql)})")
        plan = CandidatePlan(
            where=" AND ".join(conditions),
            newest_first=root_span_ids is None,
            limit=limit,
            params={"models": list(source_models)},
        )
        return self._stream(plan, root_span_ids, user_flag)

    def _stream(
        self, plan: CandidatePlan, root_span_ids: list[str] | None, user_flag: str | None
    ) -> Iterator[dict[str, Any]]:
        """Rank matching ids (narrow), copy their rows into a spillable table, read it back in rank chunks.

        DuckDB cannot sort wide rows (whole inputs and outputs) in bounded memory, so rows are never
        sorted all at once: only ids are, and each chunk of ranks is a small sort.
        """
        cursor = self._con.cursor()
        try:
            if root_span_ids is not None:
                load_ids(cursor, root_span_ids)
            run_query(cursor, plan.picked_sql(), plan.params, user_flag)
            # build the join's hash table on the picked ids, never on the export
            cursor.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
            try:
                run_query(cursor, plan.fetched_sql(), plan.params, user_flag)
            finally:
                cursor.execute("RESET disabled_optimizers")
            (total,) = cursor.execute("SELECT count(*) FROM picked").fetchone()
            for first in range(0, total, CHUNK_RANKS):
                run_query(cursor, plan.chunk_sql(first, first + CHUNK_RANKS), {}, user_flag)
                while batch := fetch_batch(cursor, user_flag):
                    for row in batch:
                        yield dict(zip(CANDIDATE_FIELDS, row, strict=True))
        finally:
            cursor.close()

    def _checked_where(self, flag: str, fragment: str) -> str:
        try:
            boolean_condition(fragment)
        except InputError as exc:
            raise InputError(f"invalid {flag}: {exc.message}", hint=exc.hint) from None
        sql = rewritten_filter(flag, fragment)
        self._check(flag, f"EXPLAIN SELECT 1 FROM {SPAN_VIEW} WHERE ({sql})")
        return sql

    def _checked_time(self, flag: str, fragment: str) -> str:
        """A time bound is evaluated once on its own, so `'garbage'` fails here, naming its flag."""
        sql = rewritten_filter(flag, fragment)
        self._check(flag, f"SELECT CAST(({sql}) AS TIMESTAMPTZ)")
        return sql

    def _check(self, flag: str, sql: str) -> None:
        import duckdb

        cursor = self._con.cursor()
        try:
            cursor.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"invalid {flag}: {first_line(exc)}", hint=flag_hint(flag)) from exc
        finally:
            cursor.close()

    # -- final facet values ------------------------------------------------------------------------

    def facets_query(self, root_span_ids: list[str]) -> str:
        return facets_query_text(self.project_id, root_span_ids)

    def fetch_final_facets(self, root_span_ids: list[str]) -> list[dict[str, Any]]:
        """Rows carrying `facets` for these traces, newest first, in one pass (a semi-join)."""
        if not root_span_ids:
            return []
        cursor = self._con.cursor()
        try:
            load_ids(cursor, root_span_ids)
            run_query(
                cursor,
                f"SELECT id, root_span_id, span_id, created_text, {as_text('facets')} FROM {SPAN_VIEW}"
                " WHERE facets IS NOT NULL AND root_span_id IN (SELECT root_span_id FROM wanted_roots)"
                " ORDER BY created DESC NULLS LAST, id DESC",
                {},
                None,
            )
            columns = ("id", "root_span_id", "span_id", "created", "facets")
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()
