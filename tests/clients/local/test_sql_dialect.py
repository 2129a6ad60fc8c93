"""Braintrust-dialect SQL rewritten for DuckDB: judged by the rows the rewritten SQL selects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from facetopt.clients.local.sql_dialect import to_duckdb_query, to_duckdb_where
from facetopt.errors import InputError

JSON_COLUMNS = {"input", "metadata", "scores", "span_attributes"}
NOW = datetime.now(UTC)
ROWS = [
    (
        "1",
        NOW - timedelta(hours=1),
        {"model": "brain-facet-1", "tier": "enterprise", "odd key-1": "v", "flag": True, "n": 5},
        {"Factuality": 0.9},
        {"metadata": {"x": "a"}, "messages": [{"content": "Hi there"}]},
    ),
    (
        "2",
        NOW - timedelta(days=3),
        {"model": "brain-facet-latest", "tier": "free", "n": "12"},
        {"Factuality": 0.2},
        {},
    ),
    (
        "3",
        NOW - timedelta(days=10),
        {"model": "gpt-4o", "tier": "pro", "n": 40, "flag": False},
        {},
        {"metadata": {}},
    ),
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (id VARCHAR, created TIMESTAMPTZ,"
        " metadata JSON, scores JSON, input JSON, span_attributes JSON)"
    )
    for row_id, created, metadata, scores, span_input in ROWS:
        con.execute(
            'INSERT INTO t VALUES (?, ?, ?, ?, ?, \'{"type": "llm"}\')',
            [row_id, created, json.dumps(metadata), json.dumps(scores), json.dumps(span_input)],
        )
    return con


def selected_ids(con: duckdb.DuckDBPyConnection, where: str) -> list[str]:
    sql = f"SELECT id FROM t WHERE {to_duckdb_where(where, JSON_COLUMNS)} ORDER BY id"
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("metadata.model = 'brain-facet-1'", ["1"]),
        ("span_attributes.type = 'llm' AND metadata.model <> 'gpt-4o'", ["1", "2"]),
        ("metadata.model IN ('brain-facet-1', 'brain-facet-latest')", ["1", "2"]),
        ("metadata.model NOT IN ('gpt-4o')", ["1", "2"]),
        ("scores.Factuality > 0.5", ["1"]),
        ("scores.Factuality IS NULL", ["3"]),
        ("input.metadata.x = 'a'", ["1"]),
        ("input.metadata.x IS NULL", ["2", "3"]),
        ("input.messages[0].content LIKE 'Hi%'", ["1"]),
        ("metadata.\"odd key-1\" = 'v'", ["1"]),
        ("metadata.`odd key-1` = 'v'", ["1"]),
        ("metadata['model'] = 'gpt-4o'", ["3"]),
        ("metadata.tier LIKE 'ent%'", ["1"]),
        ("metadata.tier ILIKE 'FR%'", ["2"]),
        # numbers compare as numbers ('5' > '10' as text), also when stored as a string
        ("metadata.n > 10", ["2", "3"]),
        ("metadata.n BETWEEN 4 AND 13", ["1", "2"]),
        ("metadata.n IN (5, 40)", ["1", "3"]),
        ("metadata.flag = true", ["1"]),
        ("metadata.flag", ["1"]),
        ("NOT metadata.flag", ["3"]),
        ("created >= NOW() - INTERVAL 2 DAY", ["1"]),
        ("created >= NOW() - INTERVAL 7 DAY AND created < NOW() - INTERVAL 30 MINUTE", ["1", "2"]),
        ("created > now() - interval 90 minute", ["1"]),
        ("created < NOW() - INTERVAL 48 HOUR", ["2", "3"]),
        ("created >= '2000-01-01T00:00:00Z'", ["1", "2", "3"]),
        ("(metadata.tier = 'free' OR metadata.tier = 'pro') AND NOT metadata.model = 'gpt-4o'", ["2"]),
        ("id = '1' OR id = '3'", ["1", "3"]),
    ],
)
def test_rewritten_filter_selects_the_right_rows(
    con: duckdb.DuckDBPyConnection, where: str, expected: list[str]
):
    assert selected_ids(con, where) == expected


def test_paths_become_json_extraction_with_a_cast_for_numbers():
    assert (
        to_duckdb_where("metadata.model = 'x'", JSON_COLUMNS).lower()
        == "json_extract_string(metadata, '$.model') = 'x'"
    )
    rewritten = to_duckdb_where("scores.Factuality > 0.5", JSON_COLUMNS).lower()
    assert rewritten == "try_cast(json_extract_string(scores, '$.factuality') as double) > 0.5"


def test_a_column_outside_the_json_columns_is_left_alone():
    assert to_duckdb_where("other.model = 'x'", JSON_COLUMNS) == "other.model = 'x'"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("metadata.model = 'x'; DROP TABLE t", "unsupported SQL: multiple statements"),
        ("SELECT 1", "unsupported SQL: a SELECT statement"),
        ("DROP TABLE t", "unsupported SQL: a DROP statement"),
        ("metadata.model IN (SELECT 1)", "unsupported SQL: subqueries"),
        ("EXISTS (SELECT 1)", "unsupported SQL: subqueries"),
        ("row_number() OVER () > 1", "unsupported SQL: window functions"),
        ("metadata.model = ?", "unsupported SQL: query parameters"),
        ("metadata.model = = 'x'", "cannot parse SQL"),
        ("metadata.model = 'unclosed", "cannot parse SQL"),
        ("   ", "empty SQL"),
    ],
)
def test_filters_outside_the_subset_are_refused(where: str, message: str):
    with pytest.raises(InputError) as caught:
        to_duckdb_where(where, JSON_COLUMNS)
    assert caught.value.message.startswith(message)
    assert caught.value.hint


def test_query_groups_and_orders_on_paths(con: duckdb.DuckDBPyConnection):
    sql = to_duckdb_query(
        "SELECT metadata.model, count(*) AS n, avg(scores.Factuality) AS factuality FROM project_logs('p1') "
        "WHERE created > NOW() - INTERVAL 7 DAY GROUP BY metadata.model ORDER BY factuality DESC LIMIT 5",
        {"project_logs": "t"},
        JSON_COLUMNS,
    )
    rows = con.execute(sql).fetchall()
    assert rows == [("brain-facet-1", 1, 0.9), ("brain-facet-latest", 1, 0.2)]
    assert [d[0] for d in con.execute(sql).description][:2] == ["model", "n"]


def test_query_table_function_goes_through_the_resolver(con: duckdb.DuckDBPyConnection):
    calls = []

    def resolve(kind: str, argument: str) -> str:
        calls.append((kind, argument))
        return "(SELECT * FROM t WHERE id <> '1')"

    sql = to_duckdb_query(
        "SELECT id FROM experiment('e-1') WHERE scores.Factuality < 0.5", resolve, JSON_COLUMNS
    )
    assert calls == [("experiment", "e-1")]
    assert con.execute(sql).fetchall() == [("2",)]


def test_query_resolver_dict_prefers_the_exact_argument(con: duckdb.DuckDBPyConnection):
    tables = {"dataset": "missing_table", "dataset:golden": "t"}
    sql = to_duckdb_query("SELECT count(*) FROM dataset('golden')", tables, JSON_COLUMNS)
    assert con.execute(sql).fetchall() == [(3,)]
    with pytest.raises(InputError, match=r"unknown source: project_logs\('p'\)"):
        to_duckdb_query("SELECT * FROM project_logs('p')", tables, JSON_COLUMNS)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT * FROM project_logs('p') a JOIN project_logs('q') b ON a.id = b.id",
            "unsupported SQL: joins",
        ),
        ("SELECT id FROM project_logs('p') UNION SELECT id FROM project_logs('q')", "unsupported SQL: UNION"),
        ("WITH x AS (SELECT 1) SELECT * FROM project_logs('p')", "unsupported SQL: WITH"),
        ("SELECT * FROM (SELECT * FROM project_logs('p'))", "unsupported SQL: subqueries"),
        (
            "SELECT row_number() OVER (ORDER BY created) FROM project_logs('p')",
            "unsupported SQL: window functions",
        ),
        ("SELECT * FROM t", "unsupported SQL: FROM t"),
        ("SELECT 1", "unsupported SQL: a query without FROM"),
        ("INSERT INTO t VALUES (1)", "unsupported SQL: a INSERT statement"),
        ("DELETE FROM t", "unsupported SQL: a DELETE statement"),
        (
            "SELECT 1 FROM project_logs('p'); SELECT 2 FROM project_logs('p')",
            "unsupported SQL: multiple statements",
        ),
        ("SELECT * FROM project_logs('p') LIMIT 10 OFFSET 'abc'", "unsupported SQL: OFFSET with a cursor"),
    ],
)
def test_queries_outside_the_subset_are_refused(sql: str, message: str):
    with pytest.raises(InputError) as caught:
        to_duckdb_query(sql, {"project_logs": "t"}, JSON_COLUMNS)
    assert caught.value.message.startswith(message)
