"""The SQL engine behind the fake `/btql`: Braintrust's SQL dialect run over in-memory rows.

Written independently of facetopt's own dialect rewriter (DECISIONS.md: their bugs must not
cancel out). The approach differs on purpose: every dotted path the query names
(`metadata.model`, `scores.Factuality`) is evaluated in Python and materialised as a typed
DuckDB column named after the path; the query then runs in DuckDB almost verbatim.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

PAGE_CAP = 1000
OBJECT_FUNCTIONS = ("project_logs", "experiment", "dataset")
KNOWN_FIELDS = frozenset(
    {
        "id", "span_id", "root_span_id", "span_parents", "is_root", "created", "input", "output",
        "expected", "error", "metadata", "scores", "metrics", "tags", "span_attributes", "facets",
        "origin", "context", "comments", "_xact_id", "_pagination_key", "project_id", "log_id",
        "org_id", "dataset_id", "experiment_id",
    }
)  # fmt: skip
RANGE_FIELDS = frozenset({"created", "_xact_id", "_pagination_key"})
SCOPE_FIELDS = frozenset({"root_span_id", "id"})


class BtqlError(Exception):
    """A query the service refuses: answered with HTTP 400 and this message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ParsedQuery:
    sql: str
    statement: Any  # sqlglot Select
    object_type: str  # project_logs | experiment | dataset
    object_id: str
    limit: int | None
    cursor: str | None


def parse_query(sql: str) -> ParsedQuery:
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        raise BtqlError(f"SQL syntax error{where}: {first.get('description') or exc}") from None
    if len(statements) != 1:
        raise BtqlError("expected exactly one SELECT statement")
    stmt = statements[0]
    if not isinstance(stmt, exp.Select):
        raise BtqlError(f"only SELECT queries are supported, not {stmt.key.upper()}")
    for node_type, what in (
        (exp.Join, "joins"),
        (exp.Subquery, "subqueries"),
        (exp.Window, "window functions"),
        (exp.With, "WITH clauses"),
    ):
        if stmt.find(node_type) is not None:
            raise BtqlError(f"{what} are not supported")
    if any(isinstance(s, exp.Select) for s in stmt.find_all(exp.Select) if s is not stmt):
        raise BtqlError("subqueries are not supported")
    from_ = stmt.find(exp.From)
    source = from_.this if from_ is not None else None
    func = source.this if isinstance(source, exp.Table) else None
    if not isinstance(func, exp.Anonymous) or str(func.this).lower() not in OBJECT_FUNCTIONS:
        raise BtqlError("FROM must be one of project_logs('<id>'), experiment('<id>'), dataset('<id>')")
    args = func.expressions
    if len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].is_string:
        raise BtqlError(f"{func.this}() takes one string literal: the object id")
    limit = None
    if stmt.args.get("limit") is not None:
        limit_expr = stmt.args["limit"].expression
        if not isinstance(limit_expr, exp.Literal) or limit_expr.is_string:
            raise BtqlError("LIMIT must be an integer literal")
        limit = int(limit_expr.this)
    cursor = None
    if stmt.args.get("offset") is not None:
        offset_expr = stmt.args["offset"].expression
        if not isinstance(offset_expr, exp.Literal) or not offset_expr.is_string:
            raise BtqlError("OFFSET takes a cursor string returned by a previous page")
        cursor = offset_expr.this
    return ParsedQuery(sql, stmt, str(func.this).lower(), args[0].this, limit, cursor)


def _column_name(node: Any) -> str | None:
    from sqlglot import exp

    if isinstance(node, exp.Column):
        return ".".join(part.name for part in node.parts)
    return None


def _conjuncts(node: Any):
    from sqlglot import exp

    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    elif isinstance(node, exp.Paren):
        yield from _conjuncts(node.this)
    else:
        yield node


def lint_strict(parsed: ParsedQuery) -> None:
    """Refuse a project_logs query that would scan the whole project, as strict lint does."""
    from sqlglot import exp

    if parsed.object_type != "project_logs":
        return
    where = parsed.statement.args.get("where")
    for cond in _conjuncts(where.this) if where is not None else ():
        sides = [_column_name(cond.this), _column_name(cond.args.get("expression"))]
        if isinstance(cond, (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.EQ)) and RANGE_FIELDS & set(
            sides
        ):
            return
        if isinstance(cond, (exp.EQ, exp.In)) and SCOPE_FIELDS & set(sides):
            return
    raise BtqlError(
        "lint error (strict): a project_logs query needs a range filter on created, _xact_id or "
        "_pagination_key, or a root_span_id/id scope, ANDed into WHERE"
    )


def _get_path(row: dict, parts: list[str]) -> Any:
    value: Any = row
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _duck_type(path: str, values: list[Any], hint: str | None) -> str:
    if path in ("created",):
        return "TIMESTAMPTZ"
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return hint or "VARCHAR"
    if kinds == {bool}:
        return "BOOLEAN"
    if kinds <= {int, float}:
        return "DOUBLE"
    if kinds == {str}:
        return "VARCHAR"
    return "JSON"


def _literal_hint(column: Any) -> str | None:
    """The type a column is compared with, for paths with no values at all."""
    from sqlglot import exp

    parent = column.parent
    if isinstance(parent, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        other = parent.expression if parent.this is column else parent.this
        if isinstance(other, exp.Literal):
            return "VARCHAR" if other.is_string else "DOUBLE"
    if isinstance(parent, (exp.Where, exp.Not)):
        return "BOOLEAN"
    return None


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"fake-offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "fake-offset":
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise BtqlError(f"invalid cursor {cursor!r}") from None


def _to_json_value(value: Any, type_name: str) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if type_name == "JSON" and isinstance(value, str):
        return json.loads(value)
    return value


def execute(parsed: ParsedQuery, rows: list[dict]) -> tuple[list[dict], str | None]:
    """Run the query over `rows` (already scoped to its object); return one page and the next cursor."""
    import duckdb
    from sqlglot import exp

    stmt = parsed.statement.copy()
    aliases = {e.alias for e in stmt.expressions if isinstance(e, exp.Alias)}
    # output names, computed before any rewrite
    out_names: list[str | None] = []
    for e in stmt.expressions:
        if isinstance(e, exp.Star):
            out_names.append(None)
        elif isinstance(e, exp.Alias):
            out_names.append(e.alias)
        elif isinstance(e, exp.Column):
            out_names.append(e.parts[-1].name)
        else:
            out_names.append(e.sql(dialect="duckdb"))
    rows = [dict(r, is_root=not r.get("span_parents")) for r in rows]
    paths: dict[str, list[str]] = {}
    hints: dict[str, str] = {}
    for column in list(stmt.find_all(exp.Column)):
        parts = [p.name for p in column.parts]
        name = ".".join(parts)
        if len(parts) == 1 and name in aliases and name not in KNOWN_FIELDS:
            continue
        if parts[0] not in KNOWN_FIELDS:
            raise BtqlError(f"unknown field '{name}'")
        paths[name] = parts
        hint = _literal_hint(column)
        if hint:
            hints.setdefault(name, hint)
        column.replace(exp.column(exp.to_identifier(name, quoted=True)))
    star = any(isinstance(e, exp.Star) for e in stmt.expressions)
    if star:
        stmt.set(
            "expressions",
            [
                exp.column(exp.to_identifier("__idx", quoted=True)) if isinstance(e, exp.Star) else e
                for e in stmt.expressions
            ],
        )
    stmt.find(exp.From).this.replace(exp.to_table("t"))
    stmt.set("limit", None)
    stmt.set("offset", None)

    names = list(paths)
    values = {name: [_get_path(r, paths[name]) for r in rows] for name in names}
    types = {name: _duck_type(name, values[name], hints.get(name)) for name in names}
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        columns = [("__idx", "BIGINT")] + [(n, types[n]) for n in names]
        ddl = ", ".join(f"{exp.to_identifier(n, quoted=True).sql(dialect='duckdb')} {t}" for n, t in columns)
        con.execute(f"CREATE TABLE t ({ddl})")
        if rows:
            _load(con, rows, names, values, columns)
        try:
            cur = con.execute(stmt.sql(dialect="duckdb"))
            result = cur.fetchall()
            out_types = [str(d[1]) for d in cur.description]
        except duckdb.Error as exc:
            raise BtqlError(f"SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()

    records = []
    for tup in result:
        record: dict[str, Any] = {}
        for name, type_name, value in zip(out_names, out_types, tup, strict=True):
            if name is None:
                record.update(json.loads(json.dumps(_strip_computed(rows[value]))))
            else:
                record[name] = _to_json_value(value, type_name)
        records.append(record)
    if parsed.limit is not None:
        records = records[: parsed.limit]
    offset = _decode_cursor(parsed.cursor) if parsed.cursor else 0
    page_size = min(parsed.limit or PAGE_CAP, PAGE_CAP)
    page = records[offset : offset + page_size]
    cursor = encode_cursor(offset + page_size) if len(records) > offset + page_size else None
    return page, cursor


def _strip_computed(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "is_root"}


def _load(
    con: Any, rows: list[dict], names: list[str], values: dict[str, list[Any]], columns: list[tuple[str, str]]
) -> None:
    """Bulk-load through NDJSON (DuckDB's executemany is far too slow for thousands of rows)."""
    fd, path = tempfile.mkstemp(suffix=".ndjson", prefix="fake-btql-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for i in range(len(rows)):
                line = {"c0": i}
                for j, name in enumerate(names, start=1):
                    line[f"c{j}"] = values[name][i]
                fh.write(json.dumps(line, default=str) + "\n")
        spec = ", ".join(f"'c{j}': '{t}'" for j, (_, t) in enumerate(columns))
        con.execute(
            f"INSERT INTO t SELECT * FROM read_json('{path}', format='newline_delimited', columns={{{spec}}})"
        )
    finally:
        os.unlink(path)
