"""The SQL facetopt sends to Braintrust `/btql`, and the paged reads built on it.

A `/btql` page holds at most 1000 rows. Reads page by keyset on (`created`, `id`) (or `id`
alone for experiments) rather than by server cursor, so the newest-first order the sampling
depends on holds whatever the server allows for cursors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from facetopt.clients.braintrust.api import btql
from facetopt.clients.braintrust.connection import BraintrustConnection
from facetopt.domain.experiments import EVAL_ERROR_KEY
from facetopt.errors import InputError, SourceError

PAGE_LIMIT = 1000
SOURCE_COLUMNS = "id, root_span_id, span_id, created, input, output, metadata, span_attributes"
SOURCE_QUERY_HINT = (
    "check --extra-where-sql / --created-after-sql / --created-before-sql; "
    "the SQL sent is saved as query.sql in the run folder"
)


def sql_string(value: str) -> str:
    """A SQL string literal: single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join(sql_string(v) for v in values)


def _keyset_condition(keyset: tuple[str, str], newest_first: bool) -> str:
    created, row_id = keyset
    op = "<" if newest_first else ">"
    return (
        f"(created {op} {sql_string(created)} OR "
        f"(created = {sql_string(created)} AND id {op} {sql_string(row_id)}))"
    )


def checked_extra_where(fragment: str) -> str:
    """`--extra-where-sql` as given, once it parses as one boolean expression (else InputError)."""
    from facetopt.clients.local.sql_dialect import boolean_condition

    try:
        boolean_condition(fragment)
    except InputError as exc:
        raise InputError(f"invalid --extra-where-sql: {exc.message}", hint=exc.hint) from None
    return fragment.strip()


def source_query_sql(
    project_id: str,
    source_models: Sequence[str],
    created_after_sql: str,
    created_before_sql: str,
    extra_where_sql: str | None = None,
    root_span_ids: Sequence[str] | None = None,
    page_limit: int | None = None,
    keyset: tuple[str, str] | None = None,
) -> str:
    """The source query of the original scripts (docs/backends.md). Newest first; with root span ids, oldest first
    and no time window. `keyset` is the (created, id) of the last row of the previous page."""
    if root_span_ids is not None and not root_span_ids:
        raise InputError("no root span ids given", hint="pass at least one --root-span-id")
    lines = [
        f"SELECT {SOURCE_COLUMNS}",
        f"FROM project_logs({sql_string(project_id)})",
        "WHERE span_attributes.type = 'llm'",
    ]
    if source_models:
        lines.append(
            "  AND (" + " OR ".join(f"metadata.model = {sql_string(m)}" for m in source_models) + ")"
        )
    newest_first = root_span_ids is None
    if newest_first:
        lines.append(f"  AND created >= {created_after_sql}")
        lines.append(f"  AND created < {created_before_sql}")
    elif root_span_ids is not None:
        lines.append(f"  AND root_span_id IN ({_sql_list(root_span_ids)})")
    if extra_where_sql and extra_where_sql.strip():
        lines.append(f"  AND ({checked_extra_where(extra_where_sql)})")
    if keyset is not None:
        lines.append(f"  AND {_keyset_condition(keyset, newest_first)}")
    direction = "DESC" if newest_first else "ASC"
    lines.append(f"ORDER BY created {direction}, id {direction}")
    if page_limit is not None:
        lines.append(f"LIMIT {int(page_limit)}")
    return "\n".join(lines)


def final_facets_sql(
    project_id: str, root_span_ids: Sequence[str], keyset: tuple[str, str] | None = None
) -> str:
    """One batch of the final-facets query: rows of these traces that carry `facets`, newest first."""
    lines = [
        "SELECT id, root_span_id, span_id, created, facets",
        f"FROM project_logs({sql_string(project_id)})",
        f"WHERE root_span_id IN ({_sql_list(root_span_ids)}) AND facets IS NOT NULL",
    ]
    if keyset is not None:
        lines.append(f"  AND {_keyset_condition(keyset, newest_first=True)}")
    lines += ["ORDER BY created DESC, id DESC", f"LIMIT {PAGE_LIMIT}"]
    return "\n".join(lines)


def _keyset_of(row: dict) -> tuple[str, str]:
    created, row_id = row.get("created"), row.get("id")
    if not isinstance(created, str) or not isinstance(row_id, str):
        raise SourceError(
            "Braintrust returned a row without `created` and `id`, so the next page cannot be requested",
            hint="report this; narrow the time window with --created-after-sql to read fewer rows",
        )
    return created, row_id


def _more_pages(reply: dict, rows: list, requested: int) -> bool:
    return len(rows) >= requested or bool(reply.get("cursor"))


class SourceSpanFetch:
    """An iterator over source span rows (raw dicts as `/btql` returns them), read page by page.

    `sql_texts` holds every query sent so far, in order (the query.sql artifact)."""

    def __init__(
        self,
        conn: BraintrustConnection,
        project_id: str,
        query: dict[str, Any],
        limit: int | None,
        page_limit: int,
    ):
        self.sql_texts: list[str] = []
        self.rows_read = 0
        self._rows = self._read(conn, project_id, query, limit, max(1, min(page_limit, PAGE_LIMIT)))

    def __iter__(self) -> SourceSpanFetch:
        return self

    def __next__(self) -> dict:
        return next(self._rows)

    def _read(self, conn, project_id, query, limit, page_limit) -> Iterator[dict]:  # noqa: ANN001
        if query.get("root_span_ids") is not None and not query["root_span_ids"]:
            return
        keyset = None
        while limit is None or self.rows_read < limit:
            size = page_limit if limit is None else min(page_limit, limit - self.rows_read)
            sql = source_query_sql(project_id, page_limit=size, keyset=keyset, **query)
            self.sql_texts.append(sql)
            reply = btql(conn, sql, hint=SOURCE_QUERY_HINT)
            rows = reply.get("data") or []
            for row in rows:
                self.rows_read += 1
                yield row
            if not rows or not _more_pages(reply, rows, size):
                return
            next_keyset = _keyset_of(rows[-1])
            if next_keyset == keyset:
                return
            keyset = next_keyset


def fetch_source_spans(
    conn: BraintrustConnection,
    project_id: str,
    source_models: Sequence[str],
    created_after_sql: str,
    created_before_sql: str,
    extra_where_sql: str | None = None,
    root_span_ids: Sequence[str] | None = None,
    limit: int | None = None,
    page_limit: int = PAGE_LIMIT,
) -> SourceSpanFetch:
    """Source spans newest first (oldest first with root span ids) until `limit` or no more."""
    query = {
        "source_models": list(source_models),
        "created_after_sql": created_after_sql,
        "created_before_sql": created_before_sql,
        "extra_where_sql": extra_where_sql,
        "root_span_ids": list(root_span_ids) if root_span_ids is not None else None,
    }
    return SourceSpanFetch(conn, project_id, query, None if root_span_ids is not None else limit, page_limit)


def fetch_final_facets(
    conn: BraintrustConnection, project_id: str, root_span_ids: Sequence[str], batch: int = 100
) -> tuple[list[dict], list[str]]:
    """Rows carrying final `facets` for these traces, newest first within each batch; and the SQL sent."""
    ids = list(dict.fromkeys(root_span_ids))
    rows: list[dict] = []
    sql_texts: list[str] = []
    for start in range(0, len(ids), max(1, batch)):
        chunk = ids[start : start + max(1, batch)]
        keyset = None
        while True:
            sql = final_facets_sql(project_id, chunk, keyset)
            sql_texts.append(sql)
            reply = btql(conn, sql)
            page = reply.get("data") or []
            rows.extend(page)
            if not page or not _more_pages(reply, page, PAGE_LIMIT):
                break
            keyset = _keyset_of(page[-1])
    return rows, sql_texts


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _experiment_spans(conn: BraintrustConnection, experiment_id: str, columns: str, where: str) -> list[dict]:
    """Every span of the experiment matching `where`, paged by keyset on `id`."""
    spans: list[dict] = []
    last_id = None
    while True:
        after = f" AND id > {sql_string(last_id)}" if last_id is not None else ""
        sql = (
            f"SELECT {columns}\nFROM experiment({sql_string(experiment_id)})\n"
            f"WHERE {where}{after}\nORDER BY id ASC\nLIMIT {PAGE_LIMIT}"
        )
        reply = btql(conn, sql, hint="check the experiment id (facetopt inspect experiments lists them)")
        page = reply.get("data") or []
        spans.extend(page)
        if not page or not _more_pages(reply, page, PAGE_LIMIT) or page[-1].get("id") == last_id:
            return spans
        last_id = page[-1].get("id")


def count_experiment_results(conn: BraintrustConnection, experiment_id: str) -> int:
    """The eval cases Braintrust holds for the experiment: root spans that carry their output (a
    root span logged before its task ended has none; child spans never count)."""
    roots = _experiment_spans(conn, experiment_id, "id, output", "is_root = true")
    return sum(1 for root in roots if root.get("output") is not None)


def _row_id(root: dict, metadata: dict) -> str:
    origin = _decode(root.get("origin"))
    if isinstance(origin, dict) and isinstance(origin.get("id"), str):
        return origin["id"]
    for key in ("dataset_row_id", "row_id"):
        if isinstance(metadata.get(key), str):
            return metadata[key]
    inp = _decode(root.get("input"))
    if isinstance(metadata.get("source_row_id"), str) and isinstance(inp, dict) and inp.get("facet_name"):
        return f"{metadata['source_row_id']}:{inp['facet_name']}"
    return str(root.get("id"))


def fetch_experiment_rows(conn: BraintrustConnection, experiment_id: str) -> list[dict]:
    """One dict per root eval span: id (the dataset row id), input, output, expected, metadata,
    scores (joined from the score child spans by root_span_id) and error; ordered by id."""
    roots = _experiment_spans(
        conn,
        experiment_id,
        "id, root_span_id, created, input, output, expected, metadata, origin, error, scores",
        "is_root = true",
    )
    score_spans = _experiment_spans(
        conn,
        experiment_id,
        "id, root_span_id, span_attributes, scores, output",
        "span_attributes.type = 'score'",
    )
    scores_by_root: dict[str, dict[str, Any]] = {}
    for span in score_spans:
        scores = _decode(span.get("scores"))
        if not isinstance(scores, dict) or not scores:
            attrs = _decode(span.get("span_attributes")) or {}
            output = _decode(span.get("output"))
            name = attrs.get("name") if isinstance(attrs, dict) else None
            scores = (
                {name: output.get("score")} if name and isinstance(output, dict) and "score" in output else {}
            )
        scores_by_root.setdefault(str(span.get("root_span_id")), {}).update(scores)
    results = []
    for root in roots:
        metadata = _decode(root.get("metadata"))
        metadata = metadata if isinstance(metadata, dict) else {}
        scores = dict(_decode(root.get("scores")) or {})
        scores.update(scores_by_root.get(str(root.get("root_span_id")), {}))
        # the eval never raises: a failed model call is logged as metadata.eval_error
        error = root.get("error") or metadata.get(EVAL_ERROR_KEY) or metadata.get("error")
        results.append(
            {
                "id": _row_id(root, metadata),
                "root_span_id": root.get("root_span_id"),
                "input": _decode(root.get("input")),
                "output": root.get("output"),
                "expected": root.get("expected"),
                "metadata": metadata,
                "scores": scores,
                "error": None
                if error in (None, "")
                else (error if isinstance(error, str) else json.dumps(error)),
            }
        )
    return sorted(results, key=lambda r: r["id"])
