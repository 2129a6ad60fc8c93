"""Braintrust-dialect SQL run by DuckDB over the local store (`facetopt inspect sql` on the local
backend). The caller resolves `dataset('...')` / `experiment('...')` to the views built here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facetopt.clients.local.store import LocalStore
from facetopt.errors import InputError

JSON_COLUMNS = {"input", "output", "metadata", "scores", "tags", "span_attributes", "span_parents"}
MAX_ROWS = 10_000

DATASET_VIEW = """(SELECT id, json_extract("row", '$.input') AS input,
    json_extract_string("row", '$.expected') AS expected, json_extract("row", '$.metadata') AS metadata,
    json_extract("row", '$.tags') AS tags, updated AS created
  FROM dataset_rows WHERE project = {project} AND dataset = {dataset})"""

# An experiment as Braintrust's experiment spans: a root `eval` span per row and one `score` span per
# scorer, named in span_attributes.name, whose input is {input, output, expected, metadata} and whose
# output holds the score(s), so the original README's SQL recipes answer unchanged. Built from the
# stored rows (score names as they were always stored), so experiments stored before keep working.
# facet_name, split, experiment_id and error are facetopt's own columns beside Braintrust's.
_BASE = """(SELECT id AS row_id, facet_name, split, experiment_id, "row" FROM experiment_rows
    WHERE experiment_id = {experiment_id})"""
_META = """json_merge_patch(json_object('dataset_row_id', b.row_id, 'facet_name', b.facet_name, 'split', b.split),
    coalesce(json_extract(b."row", '$.metadata'), CAST('{{}}' AS JSON)))"""
_SCORE_INPUT = f"""json_object('input', json_extract(b."row", '$.input'), 'output', json_extract(b."row", '$.output'),
    'expected', json_extract(b."row", '$.expected'), 'metadata', {_META})"""
_COMMON = """b.facet_name, b.split, b.experiment_id"""


def _score_span(name: str, scores: tuple[str, ...]) -> str:
    values = {score: f"""json_extract(b."row", '$.scores.{score}')""" for score in scores}
    scores_json = "json_object(" + ", ".join(f"'{k}', {v}" for k, v in values.items()) + ")"
    if len(scores) == 1:
        output = f"json_object('score', {values[scores[0]]})"
    else:
        output = (
            "json_object(" + ", ".join(f"'{k}', json_object('score', {v})" for k, v in values.items()) + ")"
        )
    present = " OR ".join(f"{v} IS NOT NULL" for v in values.values())
    return f"""SELECT b.row_id || '/{name}' AS id, b.row_id || '/{name}' AS span_id, b.row_id || '/eval' AS root_span_id,
    json_array(b.row_id || '/eval') AS span_parents, false AS is_root,
    json_object('name', '{name}', 'type', 'score', 'purpose', 'scorer') AS span_attributes,
    {_SCORE_INPUT} AS input, {output} AS output, CAST(NULL AS VARCHAR) AS expected,
    CAST(NULL AS JSON) AS metadata, {scores_json} AS scores, CAST('[]' AS JSON) AS tags,
    CAST(NULL AS VARCHAR) AS error, {_COMMON}
  FROM {_BASE} b WHERE {present}"""


_ROOT_SPAN = f"""SELECT b.row_id AS id, b.row_id || '/eval' AS span_id, b.row_id || '/eval' AS root_span_id,
    CAST(NULL AS JSON) AS span_parents, true AS is_root, json_object('name', 'eval', 'type', 'eval') AS span_attributes,
    json_extract(b."row", '$.input') AS input, json_extract(b."row", '$.output') AS output,
    json_extract_string(b."row", '$.expected') AS expected, {_META} AS metadata, CAST(NULL AS JSON) AS scores,
    CAST('[]' AS JSON) AS tags, json_extract_string(b."row", '$.error') AS error, {_COMMON}
  FROM {_BASE} b"""

SCORERS = (
    ("binary_classification_scores", ("binary_decision_match", "positive_recall", "negative_specificity")),
    ("sentiment_label_correct", ("sentiment_label_correct",)),
    ("Factuality", ("Factuality",)),
)
EXPERIMENT_VIEW = (
    "(SELECT * FROM ("
    + "\n  UNION ALL ".join([_ROOT_SPAN, *(_score_span(name, scores) for name, scores in SCORERS)])
    + "))"
)


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
