"""DuckDB work behind the local span source: export files found and opened, the span view, and the
SQL that picks candidate spans newest first (or by explicit ids) in bounded memory."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facetopt.clients.braintrust.sql import sql_string
from facetopt.clients.local.sql_dialect import to_duckdb_where
from facetopt.errors import FacetoptError, InputError, SourceError

SPAN_VIEW = "spans"

# Read as JSON (not STRUCT) so `facets` keys keep their casing; ids as text.
COLUMNS = {
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
JSON_COLUMNS = {name for name, kind in COLUMNS.items() if kind == "JSON"}
FETCH_BATCH = 256
SOURCE_HINT = (
    "pass NDJSON span files (one span per line) or `bt sync pull` output folders (…/data/part-*.jsonl)"
)


PAYLOAD_FIELDS = ("input", "output", "metadata", "span_attributes")
CANDIDATE_FIELDS = ("id", "root_span_id", "span_id", "created", *PAYLOAD_FIELDS)
CHUNK_RANKS = 5000


@dataclass
class CandidatePlan:
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
        text_columns = ", ".join(f"{as_text('s.' + c)} AS {c}" for c in PAYLOAD_FIELDS)
        return (
            "CREATE OR REPLACE TEMP TABLE fetched AS SELECT p.rank, s.id, s.root_span_id, s.span_id,"
            f" s.created_text, s.created, {text_columns}"
            f" FROM (SELECT * FROM {SPAN_VIEW} WHERE {self.where}) s JOIN picked p ON s.id = p.id"
        )

    @staticmethod
    def chunk_sql(first: int, last: int) -> str:
        # an id present twice in the export comes out once: its newest row
        return (
            f"SELECT DISTINCT ON (rank) id, root_span_id, span_id, created_text, {', '.join(PAYLOAD_FIELDS)}"
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


def span_files(paths: list[Path]) -> list[Path]:
    if not paths:
        raise SourceError("no source files given", hint=SOURCE_HINT)
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise SourceError(f"source file not found: {path}", hint=SOURCE_HINT)
        found = [path] if path.is_file() else files_in_folder(path)
        if not found:
            raise SourceError(f"no span files in folder {path}", hint=SOURCE_HINT)
        for file in found:
            try:
                with file.open("rb"):
                    pass
            except OSError as exc:
                raise SourceError(f"cannot read {file}: {exc.strerror or exc}", hint=SOURCE_HINT) from exc
        files += found
    return list(dict.fromkeys(f.resolve() for f in files))


def files_in_folder(folder: Path) -> list[Path]:
    """`bt sync pull` parts anywhere below (…/data/part-*.jsonl), plus .jsonl/.ndjson files at the top."""
    parts = [p for p in folder.rglob("part-*.jsonl*") if p.parent.name == "data" and is_ndjson(p)]
    top = [p for p in folder.iterdir() if p.is_file() and is_ndjson(p)]
    return sorted(set(parts + top))


def is_ndjson(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"))


def check_gzip(path: Path) -> None:
    """A `.gz` export that is not gzip (corrupt, truncated at the start, or mislabelled) is the user's
    file to fix, named as such."""
    if not path.name.lower().endswith(".gz"):
        return
    import zlib

    try:
        with gzip.open(path, "rb") as handle:
            handle.read(64 * 1024)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(
            f"{path} is not a readable gzip file ({exc})",
            hint="re-download or re-export it (`bt sync pull`), or gunzip it by hand to see what is wrong",
        ) from None


def release_connection(con: Any, spill_dir: str) -> None:
    con.close()
    shutil.rmtree(spill_dir, ignore_errors=True)


def open_span_view(files: list[Path], memory_limit: str, spill_dir: str) -> Any:
    import duckdb

    # 256 MB holds DuckDB's JSON read buffers (two threads) plus the narrow sorts; wide rows spill
    config: dict[str, str | bool | int | float | list[str]] = {
        "threads": 2,
        "memory_limit": memory_limit,
        "temp_directory": spill_dir,
        "preserve_insertion_order": False,
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    file_list = "[" + ", ".join(sql_string(str(f)) for f in files) + "]"
    columns = "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in COLUMNS.items()) + "}"
    con.execute(
        f"CREATE VIEW raw_spans AS SELECT * FROM read_json({file_list}, format = 'newline_delimited',"
        f" columns = {columns}, ignore_errors = true)"
    )
    decoded_columns = ", ".join(f"{decoded(name)} AS {name}" for name in sorted(JSON_COLUMNS))
    con.execute(
        f"CREATE VIEW {SPAN_VIEW} AS SELECT id, root_span_id, span_id, created AS created_text,"
        f" TRY_CAST(created AS TIMESTAMPTZ) AS created, {decoded_columns},"
        " (span_parents IS NULL OR json_array_length(span_parents) = 0) AS is_root FROM raw_spans"
    )
    return con


def decoded(column: str) -> str:
    """A JSON column whose value arrived as a JSON-encoded object or array string, decoded."""
    text = f"({column} ->> '$')"
    # only the head of the value is looked at first: a plain (possibly huge) string is never unescaped
    looks_encoded = f"regexp_matches(left({column}::VARCHAR, 16), '^\"(\\s|\\\\[nrt])*[\\[{{]')"
    return f"CASE WHEN {looks_encoded} AND json_valid({text}) THEN {text}::JSON ELSE {column} END"


def as_text(column: str) -> str:
    """A string value as its text, anything else as JSON text (the parser decodes `{`/`[` strings)."""
    return f"CASE WHEN starts_with({column}::VARCHAR, '\"') THEN {column} ->> '$' ELSE {column}::VARCHAR END"


def rewritten_filter(flag: str, fragment: str) -> str:
    try:
        return to_duckdb_where(fragment, JSON_COLUMNS)
    except InputError as exc:
        raise InputError(f"invalid {flag}: {exc.message}", hint=exc.hint) from exc


def load_ids(cursor: Any, root_span_ids: list[str]) -> None:
    cursor.execute("CREATE OR REPLACE TEMP TABLE wanted_roots (root_span_id VARCHAR)")
    cursor.execute(
        "INSERT INTO wanted_roots SELECT DISTINCT unnest($ids::VARCHAR[])", {"ids": list(root_span_ids)}
    )


def run_query(cursor: Any, sql: str, params: dict[str, Any], user_flag: str | None) -> None:
    import duckdb

    try:
        cursor.execute(sql, params) if params else cursor.execute(sql)
    except duckdb.Error as exc:
        raise query_error(exc, user_flag) from exc


def fetch_batch(cursor: Any, user_flag: str | None) -> list[tuple]:
    import duckdb

    try:
        return cursor.fetchmany(FETCH_BATCH)
    except duckdb.Error as exc:
        raise query_error(exc, user_flag) from exc


def query_error(exc: Exception, user_flag: str | None) -> FacetoptError:
    if user_flag:
        return InputError(f"invalid {user_flag}: {first_line(exc)}", hint=flag_hint(user_flag))
    return SourceError(f"cannot query the span files: {first_line(exc)}", hint=SOURCE_HINT)


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def flag_hint(flag: str) -> str:
    if flag == "--extra-where-sql":
        return "write a condition in Braintrust's SQL dialect, e.g. \"metadata.customer_tier = 'enterprise'\""
    return 'write a time in SQL, e.g. "NOW() - INTERVAL 7 DAY" or "\'2025-01-31T00:00:00Z\'"'
