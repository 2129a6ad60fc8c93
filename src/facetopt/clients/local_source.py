"""The embedded span source: NDJSON span exports (`bt sync pull` output or any .jsonl) read with DuckDB.

Rows stream out of DuckDB in batches and are never all held in Python, so a 1 GB export is read in
bounded memory. Filters use Braintrust's SQL dialect (rewritten by `sql_dialect`), so the
`--created-after-sql` / `--extra-where-sql` values that work on Braintrust work here too.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facetopt.clients.braintrust_sql import source_query_sql, sql_string
from facetopt.clients.sql_dialect import to_duckdb_where
from facetopt.errors import FacetoptError, InputError, SourceError
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
SPAN_VIEW = "spans"

# Read as JSON (not STRUCT) so `facets` keys keep their casing; ids as text.
_COLUMNS = {
    "id": "VARCHAR",
    "root_span_id": "VARCHAR",
    "span_id": "VARCHAR",
    "span_parents": "JSON",
    "created": "VARCHAR",
    "input": "JSON",
    "output": "JSON",
    "expected": "JSON",
    "metadata": "JSON",
    "span_attributes": "JSON",
    "scores": "JSON",
    "metrics": "JSON",
    "facets": "JSON",
    "tags": "JSON",
}
JSON_COLUMNS = {name for name, kind in _COLUMNS.items() if kind == "JSON"}
_FETCH_BATCH = 256
_SOURCE_HINT = (
    "pass NDJSON span files (one span per line) or `bt sync pull` output folders (…/data/part-*.jsonl)"
)


class LocalSource:
    """Spans from NDJSON files and folders, queried with DuckDB through the view `spans`."""

    def __init__(self, paths: list[Path], project_id: str = LOCAL_PROJECT_ID, memory_limit: str = "256MB"):
        self.project_id = project_id
        self.files = _span_files([Path(p) for p in paths])
        self._stats: tuple[int, int, int] | None = None
        spill_dir = tempfile.mkdtemp(prefix="facetopt-duckdb-")
        self._con = _connect(self.files, memory_limit, spill_dir)
        self._release = weakref.finalize(self, _release, self._con, spill_dir)
        if self._con.execute(f"SELECT 1 FROM {SPAN_VIEW} WHERE id IS NOT NULL LIMIT 1").fetchone() is None:
            self.close()
            raise SourceError(
                f"no spans in {', '.join(str(f) for f in self.files)}",
                hint=f"the files hold no JSON rows with an `id`; {_SOURCE_HINT}",
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
        """Lines that are not a JSON object with span fields (malformed, truncated, or not a span)."""
        return self._counts()[1]

    @property
    def rows_without_ids(self) -> int:
        return self._counts()[2]

    def _counts(self) -> tuple[int, int, int]:
        if self._stats is None:
            empty = " AND ".join(f"{name} IS NULL" for name in _COLUMNS)
            rows, blank_rows, without_ids = self._con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {empty}),"
                f" count(*) FILTER (WHERE NOT ({empty}) AND (id IS NULL OR root_span_id IS NULL))"
                " FROM raw_spans"
            ).fetchone()
            # DuckDB turns a malformed line into an all-NULL row; a line it drops shows in the line count
            lines = sum(_count_lines(path) for path in self.files)
            self._stats = (rows - blank_rows, blank_rows + max(0, lines - rows), without_ids)
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
        plan = _CandidatePlan(
            where=" AND ".join(conditions),
            newest_first=root_span_ids is None,
            limit=limit,
            params={"models": list(source_models)},
        )
        return self._stream(plan, root_span_ids, user_flag)

    def _stream(
        self, plan: _CandidatePlan, root_span_ids: list[str] | None, user_flag: str | None
    ) -> Iterator[dict[str, Any]]:
        """Rank matching ids (narrow), copy their rows into a spillable table, read it back in rank chunks.

        DuckDB cannot sort wide rows (whole inputs and outputs) in bounded memory, so rows are never
        sorted all at once: only ids are, and each chunk of ranks is a small sort.
        """
        cursor = self._con.cursor()
        try:
            if root_span_ids is not None:
                _load_ids(cursor, root_span_ids)
            _run(cursor, plan.picked_sql(), plan.params, user_flag)
            # build the join's hash table on the picked ids, never on the export
            cursor.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
            try:
                _run(cursor, plan.fetched_sql(), plan.params, user_flag)
            finally:
                cursor.execute("RESET disabled_optimizers")
            (total,) = cursor.execute("SELECT count(*) FROM picked").fetchone()
            for first in range(0, total, _CHUNK_RANKS):
                _run(cursor, plan.chunk_sql(first, first + _CHUNK_RANKS), {}, user_flag)
                while batch := _fetch(cursor, user_flag):
                    for row in batch:
                        yield dict(zip(_CANDIDATE_FIELDS, row, strict=True))
        finally:
            cursor.close()

    def _checked_where(self, flag: str, fragment: str) -> str:
        rewritten = _rewritten(flag, fragment)
        self._check(flag, f"EXPLAIN SELECT 1 FROM {SPAN_VIEW} WHERE ({rewritten})")
        return rewritten

    def _checked_time(self, flag: str, fragment: str) -> str:
        """A time bound is evaluated once on its own, so `'garbage'` fails here, naming its flag."""
        rewritten = _rewritten(flag, fragment)
        self._check(flag, f"SELECT CAST(({rewritten}) AS TIMESTAMPTZ)")
        return rewritten

    def _check(self, flag: str, sql: str) -> None:
        import duckdb

        cursor = self._con.cursor()
        try:
            cursor.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"invalid {flag}: {_first_line(exc)}", hint=_flag_hint(flag)) from exc
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
            _load_ids(cursor, root_span_ids)
            _run(
                cursor,
                f"SELECT id, root_span_id, span_id, created_text, {_as_text('facets')} FROM {SPAN_VIEW}"
                " WHERE facets IS NOT NULL AND root_span_id IN (SELECT root_span_id FROM wanted_roots)"
                " ORDER BY created DESC NULLS LAST, id DESC",
                {},
                None,
            )
            columns = ("id", "root_span_id", "span_id", "created", "facets")
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()


_PAYLOAD_FIELDS = ("input", "output", "metadata", "span_attributes")
_CANDIDATE_FIELDS = ("id", "root_span_id", "span_id", "created", *_PAYLOAD_FIELDS)
_CHUNK_RANKS = 5000


@dataclass
class _CandidatePlan:
    where: str
    newest_first: bool
    limit: int | None
    params: dict[str, Any]

    def picked_sql(self) -> str:
        if self.newest_first:
            order = "max(created) DESC NULLS LAST, id DESC"
        else:
            order = "min(created) ASC NULLS LAST, id ASC"
        keep = f" QUALIFY rank <= {int(self.limit)}" if self.limit is not None else ""
        return (
            "CREATE OR REPLACE TEMP TABLE picked AS SELECT id, row_number() OVER (ORDER BY"
            f" {order}) AS rank FROM {SPAN_VIEW} WHERE {self.where} GROUP BY id{keep}"
        )

    def fetched_sql(self) -> str:
        text_columns = ", ".join(f"{_as_text('s.' + c)} AS {c}" for c in _PAYLOAD_FIELDS)
        return (
            "CREATE OR REPLACE TEMP TABLE fetched AS SELECT p.rank, s.id, s.root_span_id, s.span_id,"
            f" s.created_text, s.created, {text_columns}"
            f" FROM (SELECT * FROM {SPAN_VIEW} WHERE {self.where}) s JOIN picked p ON s.id = p.id"
        )

    @staticmethod
    def chunk_sql(first: int, last: int) -> str:
        # an id present twice in the export comes out once: its newest row
        return (
            f"SELECT DISTINCT ON (rank) id, root_span_id, span_id, created_text, {', '.join(_PAYLOAD_FIELDS)}"
            f" FROM fetched WHERE rank > {first} AND rank <= {last}"
            " ORDER BY rank, created DESC NULLS LAST"
        )


def facets_query_text(project_id: str, root_span_ids: list[str]) -> str:
    """The final-facets query in Braintrust's dialect, as one pass (no paging) for facets_query.sql."""
    return "\n".join(
        [
            "SELECT id, root_span_id, span_id, created, facets",
            f"FROM project_logs({sql_string(project_id)})",
            f"WHERE root_span_id IN ({', '.join(map(sql_string, root_span_ids))}) AND facets IS NOT NULL",
            "ORDER BY created DESC, id DESC",
        ]
    )


# -- files and DuckDB ------------------------------------------------------------------------------


def _span_files(paths: list[Path]) -> list[Path]:
    if not paths:
        raise SourceError("no source files given", hint=_SOURCE_HINT)
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise SourceError(f"source file not found: {path}", hint=_SOURCE_HINT)
        found = [path] if path.is_file() else _files_in_folder(path)
        if not found:
            raise SourceError(f"no span files in folder {path}", hint=_SOURCE_HINT)
        for file in found:
            try:
                with file.open("rb"):
                    pass
            except OSError as exc:
                raise SourceError(f"cannot read {file}: {exc.strerror or exc}", hint=_SOURCE_HINT) from exc
        files += found
    return list(dict.fromkeys(f.resolve() for f in files))


def _files_in_folder(folder: Path) -> list[Path]:
    """`bt sync pull` parts anywhere below (…/data/part-*.jsonl), plus .jsonl/.ndjson files at the top."""
    parts = [p for p in folder.rglob("part-*.jsonl*") if p.parent.name == "data" and _is_ndjson(p)]
    top = [p for p in folder.iterdir() if p.is_file() and _is_ndjson(p)]
    return sorted(set(parts + top))


def _is_ndjson(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"))


def _count_lines(path: Path) -> int:
    """Lines that are not blank (DuckDB skips blank lines without a row)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    count = 0
    with opener(path, "rb") as handle:
        for line in handle:
            if not line.isspace():
                count += 1
    return count


def _release(con: Any, spill_dir: str) -> None:
    con.close()
    shutil.rmtree(spill_dir, ignore_errors=True)


def _connect(files: list[Path], memory_limit: str, spill_dir: str) -> Any:
    import duckdb

    # 256 MB holds DuckDB's JSON read buffers (two threads) plus the narrow sorts; wide rows spill
    config = {
        "threads": 2,
        "memory_limit": memory_limit,
        "temp_directory": spill_dir,
        "preserve_insertion_order": False,
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    file_list = "[" + ", ".join(sql_string(str(f)) for f in files) + "]"
    columns = "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in _COLUMNS.items()) + "}"
    con.execute(
        f"CREATE VIEW raw_spans AS SELECT * FROM read_json({file_list}, format = 'newline_delimited',"
        f" columns = {columns}, ignore_errors = true)"
    )
    decoded = ", ".join(f"{_decoded(name)} AS {name}" for name in sorted(JSON_COLUMNS))
    con.execute(
        f"CREATE VIEW {SPAN_VIEW} AS SELECT id, root_span_id, span_id, created AS created_text,"
        f" TRY_CAST(created AS TIMESTAMPTZ) AS created, {decoded},"
        " (span_parents IS NULL OR json_array_length(span_parents) = 0) AS is_root FROM raw_spans"
    )
    return con


def _decoded(column: str) -> str:
    """A JSON column whose value arrived as a JSON-encoded object or array string, decoded."""
    text = f"({column} ->> '$')"
    # only the head of the value is looked at first: a plain (possibly huge) string is never unescaped
    looks_encoded = f"regexp_matches(left({column}::VARCHAR, 16), '^\"(\\s|\\\\[nrt])*[\\[{{]')"
    return f"CASE WHEN {looks_encoded} AND json_valid({text}) THEN {text}::JSON ELSE {column} END"


def _as_text(column: str) -> str:
    """A string value as its text, anything else as JSON text (the parser decodes `{`/`[` strings)."""
    return f"CASE WHEN starts_with({column}::VARCHAR, '\"') THEN {column} ->> '$' ELSE {column}::VARCHAR END"


def _rewritten(flag: str, fragment: str) -> str:
    try:
        return to_duckdb_where(fragment, JSON_COLUMNS)
    except InputError as exc:
        raise InputError(f"invalid {flag}: {exc.message}", hint=exc.hint) from exc


def _load_ids(cursor: Any, root_span_ids: list[str]) -> None:
    cursor.execute("CREATE OR REPLACE TEMP TABLE wanted_roots (root_span_id VARCHAR)")
    cursor.execute(
        "INSERT INTO wanted_roots SELECT DISTINCT unnest($ids::VARCHAR[])", {"ids": list(root_span_ids)}
    )


def _run(cursor: Any, sql: str, params: dict[str, Any], user_flag: str | None) -> None:
    import duckdb

    try:
        cursor.execute(sql, params) if params else cursor.execute(sql)
    except duckdb.Error as exc:
        raise _query_error(exc, user_flag) from exc


def _fetch(cursor: Any, user_flag: str | None) -> list[tuple]:
    import duckdb

    try:
        return cursor.fetchmany(_FETCH_BATCH)
    except duckdb.Error as exc:
        raise _query_error(exc, user_flag) from exc


def _query_error(exc: Exception, user_flag: str | None) -> FacetoptError:
    if user_flag:
        return InputError(f"invalid {user_flag}: {_first_line(exc)}", hint=_flag_hint(user_flag))
    return SourceError(f"cannot query the span files: {_first_line(exc)}", hint=_SOURCE_HINT)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _flag_hint(flag: str) -> str:
    if flag == "--extra-where-sql":
        return "write a condition in Braintrust's SQL dialect, e.g. \"metadata.customer_tier = 'enterprise'\""
    return 'write a time in SQL, e.g. "NOW() - INTERVAL 7 DAY" or "\'2025-01-31T00:00:00Z\'"'
