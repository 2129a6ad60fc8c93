"""Braintrust-dialect SQL run by DuckDB over the local store (`facetopt inspect sql` on the local
backend). The caller resolves `dataset('...')` / `experiment('...')` to the views built here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facetopt.clients.local.store import LocalStore
from facetopt.errors import InputError

JSON_COLUMNS = {"input", "metadata", "scores", "tags"}
MAX_ROWS = 10_000

DATASET_VIEW = """(SELECT id, json_extract("row", '$.input') AS input,
    json_extract_string("row", '$.expected') AS expected, json_extract("row", '$.metadata') AS metadata,
    json_extract("row", '$.tags') AS tags, updated AS created
  FROM dataset_rows WHERE project = {project} AND dataset = {dataset})"""

EXPERIMENT_VIEW = """(SELECT id, json_extract("row", '$.input') AS input,
    json_extract_string("row", '$.output') AS output, json_extract_string("row", '$.expected') AS expected,
    json_extract("row", '$.metadata') AS metadata, json_extract("row", '$.scores') AS scores,
    CAST('[]' AS JSON) AS tags, json_extract_string("row", '$.error') AS error,
    facet_name, split, experiment_id
  FROM experiment_rows WHERE experiment_id = {experiment_id})"""


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def dataset_view(project: str, dataset: str) -> str:
    return DATASET_VIEW.format(project=sql_literal(project), dataset=sql_literal(dataset))


def experiment_view(experiment_id: str) -> str:
    return EXPERIMENT_VIEW.format(experiment_id=sql_literal(experiment_id))


@dataclass
class StoreQueryResult:
    executed: str
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool


def run_store_sql(store: LocalStore, sql: str, tables: Callable[[str, str], str]) -> StoreQueryResult:
    """Rewrite `sql` for DuckDB (table functions through `tables`) and run it, at most MAX_ROWS rows."""
    import duckdb

    from facetopt.clients.local.sql_dialect import to_duckdb_query

    executed = to_duckdb_query(sql, tables, JSON_COLUMNS)
    try:
        cursor = store.conn.cursor()
        try:
            cursor.execute(executed)
            columns = [column[0] for column in cursor.description or []]
            json_positions = {
                i for i, column in enumerate(cursor.description or []) if str(column[1]) == "JSON"
            }
            fetched = cursor.fetchmany(MAX_ROWS + 1)
        finally:
            cursor.close()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"SQL error: {message}", hint=f"DuckDB ran: {' '.join(executed.split())}") from exc
    rows = [
        {
            column: _value(value, i in json_positions)
            for i, (column, value) in enumerate(zip(columns, row, strict=True))
        }
        for row in fetched[:MAX_ROWS]
    ]
    return StoreQueryResult(executed, columns, rows, truncated=len(fetched) > MAX_ROWS)


def _value(value: Any, is_json: bool) -> Any:
    if is_json and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
