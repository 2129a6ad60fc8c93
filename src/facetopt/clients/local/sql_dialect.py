"""Rewrite Braintrust-dialect SQL (filters and simple SELECTs) into DuckDB SQL over JSON columns.

Braintrust writes `metadata.model = 'x'`; on a DuckDB JSON column that compares JSON with a string
and fails, so dotted paths become `json_extract_string(metadata, '$.model')`, cast by context
(`scores.Factuality > 0.5` compares as DOUBLE). The rewrite works on sqlglot's syntax tree, never on
the SQL text. The supported subset is documented in docs/backends.md ("Supported SQL").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facetopt.clients.local.sql_parse_errors import describe_parse_error
from facetopt.errors import InputError

if TYPE_CHECKING:
    from sqlglot import exp

TableResolver = Callable[[str, str], "str | None"]

TABLE_FUNCTIONS = ("project_logs", "dataset", "experiment")
# Braintrust scores and metrics are always numbers: their paths compare and sort as DOUBLE.
NUMERIC_ROOTS = frozenset({"scores", "metrics"})

SUBSET_HINT = (
    "supported: one SELECT over project_logs('<id>'), dataset('<name>') or experiment('<id>') with "
    "WHERE / GROUP BY / HAVING / ORDER BY / LIMIT, dotted JSON paths (metadata.model), comparisons, "
    "IN, BETWEEN, LIKE / ILIKE, IS NULL, NOW() - INTERVAL n DAY and aggregates; "
    "no joins, subqueries, unions, window functions, CTEs or statements other than SELECT"
)
SELECT_HINT = (
    "write one SELECT in Braintrust's SQL dialect, e.g. \"SELECT id, expected FROM dataset('<name>')"
    " WHERE metadata.facet_name = 'issues' LIMIT 10\""
)
WHERE_HINT = (
    "give one boolean condition in Braintrust's SQL dialect, e.g. "
    "\"metadata.customer_tier = 'enterprise' AND scores.Factuality > 0.5\""
)
_SIMPLE_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def to_duckdb_where(sql: str, json_columns: set[str], numeric_roots: frozenset[str] = NUMERIC_ROOTS) -> str:
    """A Braintrust expression (a condition, or a scalar such as a time bound) as DuckDB SQL."""
    from sqlglot import exp

    tree = _parse_one(sql)
    if not isinstance(tree, exp.Condition):
        raise InputError(
            f"unsupported SQL: {_describe_statement(tree)} (expected a condition)", hint=WHERE_HINT
        )
    _reject_unsupported(tree, hint=WHERE_HINT)
    return _rewrite_paths(tree, _folded(json_columns), numeric_roots).sql(dialect="duckdb")


def boolean_condition(sql: str) -> Any:
    """`sql` parsed as exactly one boolean expression in Braintrust's dialect, or InputError with the
    parse error: a fragment ANDed into a query can then never change the meaning of the rest of it
    (`1=1) OR (1=1`, a second statement, a subquery, a trailing comment are all refused)."""
    from sqlglot import exp

    tree = _parse_one(sql)
    if not isinstance(tree, exp.Condition):
        raise InputError(
            f"unsupported SQL: {_describe_statement(tree)} (expected a condition)", hint=WHERE_HINT
        )
    _reject_unsupported(tree, hint=WHERE_HINT)
    if not _is_boolean(tree):
        raise InputError(f"not a boolean condition: {sql.strip()!r}", hint=WHERE_HINT)
    if any(node.comments for node in tree.walk()):
        raise InputError("unsupported SQL: comments in a condition", hint=WHERE_HINT)
    return tree


def _is_boolean(node: Any) -> bool:
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Predicate | exp.Connector | exp.Not | exp.Boolean | exp.Func)


def to_duckdb_query(
    sql: str,
    tables: dict[str, str] | TableResolver,
    json_columns: set[str],
    numeric_roots: frozenset[str] = NUMERIC_ROOTS,
) -> str:
    """A Braintrust SELECT as DuckDB SQL, its table function replaced by what `tables` resolves.

    `tables` is a callable `(kind, argument) -> DuckDB table name or subquery (or None)`, or a dict
    keyed by `"kind:argument"` or just `"kind"` (e.g. `{"project_logs": "spans"}`).
    """
    from sqlglot import exp

    tree = _parse_one(sql, expect_select=True)
    if isinstance(tree, exp.SetOperation):
        raise InputError("unsupported SQL: UNION / INTERSECT / EXCEPT", hint=SUBSET_HINT)
    if not isinstance(tree, exp.Select):
        raise InputError(f"unsupported SQL: {_describe_statement(tree)} (only SELECT)", hint=SUBSET_HINT)
    _reject_unsupported(tree, hint=SUBSET_HINT, root=tree)
    offset = tree.args.get("offset")
    if offset is not None and isinstance(offset.expression, exp.Literal) and offset.expression.is_string:
        raise InputError("unsupported SQL: OFFSET with a cursor", hint="page with LIMIT and a numeric OFFSET")
    select = _rewrite_paths(tree, _folded(json_columns), numeric_roots)
    assert isinstance(select, exp.Select)  # the rewrite replaces path nodes, never the root
    kind, argument, table = _table_function(select)
    replacement = _resolve(tables, kind, argument)
    alias = table.args.get("alias")
    table.replace(_as_from_item(replacement, alias.name if alias else kind))
    return select.sql(dialect="duckdb")


# -- parsing and the subset ------------------------------------------------------------------------


def _dialect() -> Any:
    """sqlglot's permissive default dialect, plus backtick-quoted identifiers (metadata.`my key`)."""
    global _DIALECT
    if _DIALECT is None:
        from sqlglot import tokens
        from sqlglot.dialects.dialect import Dialect

        class BraintrustSQL(Dialect):
            class Tokenizer(tokens.Tokenizer):
                IDENTIFIERS = ['"', "`"]

        _DIALECT = BraintrustSQL
    return _DIALECT


_DIALECT: Any = None


def _parse_one(sql: str, expect_select: bool = False) -> exp.Expr:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    hint = SELECT_HINT if expect_select else WHERE_HINT
    if not sql or not sql.strip():
        raise InputError("empty SQL", hint=hint)
    try:
        statements = [s for s in sqlglot.parse(sql, read=_dialect()) if s is not None]
    except (ParseError, TokenError) as exc:
        raise InputError(describe_parse_error(sql, exc, expect_select), hint=hint) from exc
    if not statements:
        raise InputError("empty SQL", hint=hint)
    if len(statements) > 1:
        raise InputError("unsupported SQL: multiple statements", hint="give one statement, without ';'")
    return statements[0]


def _describe_statement(tree: exp.Expr) -> str:
    from sqlglot import exp

    if isinstance(tree, exp.Query):
        return "a SELECT statement"
    return f"a {tree.key.upper()} statement"


def _reject_unsupported(tree: exp.Expr, hint: str, root: exp.Expr | None = None) -> None:
    from sqlglot import exp

    checks: list[tuple[type | tuple[type, ...], str]] = [
        (exp.Join, "joins"),
        (exp.With, "WITH (common table expressions)"),
        (exp.SetOperation, "UNION / INTERSECT / EXCEPT"),
        ((exp.Subquery, exp.Exists), "subqueries"),
        (exp.Window, "window functions"),
        ((exp.Lateral, exp.Pivot, exp.Unnest), "LATERAL / PIVOT / UNNEST"),
        (exp.Into, "SELECT INTO"),
        ((exp.Placeholder, exp.Parameter), "query parameters"),
        ((exp.DDL, exp.DML, exp.Command), "statements other than SELECT"),
    ]
    for node in tree.walk():
        if isinstance(node, exp.Select) and node is not root:
            raise InputError("unsupported SQL: subqueries", hint=hint)
        for kinds, what in checks:
            if isinstance(node, kinds):
                raise InputError(f"unsupported SQL: {what}", hint=hint)


def _table_function(select: exp.Select) -> tuple[str, str, exp.Table]:
    from sqlglot import exp

    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table):
        raise InputError(
            "unsupported SQL: a query without FROM project_logs('<id>'), dataset('<name>')"
            " or experiment('<id>')",
            hint=SUBSET_HINT,
        )
    function = table.this
    name = function.name.lower() if isinstance(function, exp.Func) else ""
    args = function.expressions if isinstance(function, exp.Anonymous) else []
    if name not in TABLE_FUNCTIONS or len(args) != 1 or not isinstance(args[0], exp.Literal):
        raise InputError(f"unsupported SQL: FROM {table.sql()}", hint=SUBSET_HINT)
    return name, args[0].name, table


def _resolve(tables: dict[str, str] | TableResolver, kind: str, argument: str) -> str:
    if callable(tables):
        resolved = tables(kind, argument)
    else:
        resolved = tables.get(f"{kind}:{argument}") or tables.get(kind)
    if not resolved:
        raise InputError(
            f"unknown source: {kind}('{argument}')",
            hint="name a project, dataset or experiment that exists on this backend",
        )
    return resolved


def _as_from_item(replacement: str, alias: str) -> exp.Expr:
    import sqlglot
    from sqlglot import exp

    text = replacement.strip()
    if text.startswith("(") or text.split(None, 1)[0].upper() in ("SELECT", "WITH", "FROM"):
        query = sqlglot.parse_one(text, read="duckdb")
        if isinstance(query, exp.Subquery):
            query = query.this
        return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    return exp.to_table(text, dialect="duckdb")


# -- dotted paths ----------------------------------------------------------------------------------


def _folded(columns: set[str]) -> set[str]:
    return {c.lower() for c in columns}


def _rewrite_paths(tree: exp.Expr, json_columns: set[str], numeric_roots: frozenset[str]) -> exp.Expr:
    def rewrite(node: exp.Expr) -> exp.Expr:
        parts = _path_parts(node)
        if parts is None or len(parts) < 2 or not isinstance(parts[0], str):
            return node
        root = parts[0]
        if root.lower() not in json_columns:
            return node
        return _extract(node, root, parts[1:], numeric_roots)

    return tree.transform(rewrite)


def _path_parts(node: exp.Expr) -> list[str | int] | None:
    """`input.metadata.x` -> ["input", "metadata", "x"]; `input.messages[0]` -> [..., 0]; else None."""
    from sqlglot import exp

    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            return None
        return [part.name for part in node.parts]
    if isinstance(node, exp.Dot):
        left = _path_parts(node.this)
        if left is None or not isinstance(node.expression, exp.Identifier):
            return None
        return [*left, node.expression.name]
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        left = _path_parts(node.this)
        key = node.expressions[0]
        if left is None or not isinstance(key, exp.Literal):
            return None
        return [*left, key.name if key.is_string else int(key.name)]
    return None


def json_path(keys: list[str | int]) -> str:
    """A DuckDB JSON path: `$.a."odd key"[0]`, or a JSON pointer when a key holds `"` or `\\`."""
    if any(isinstance(k, str) and ('"' in k or "\\" in k) for k in keys):
        return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)
    path = "$"
    for key in keys:
        if isinstance(key, int):
            path += f"[{key}]"
        elif _SIMPLE_KEY_RE.match(key):
            path += f".{key}"
        else:
            path += f'."{key}"'
    return path


def _extract(node: exp.Expr, root: str, keys: list[str | int], numeric_roots: frozenset[str]) -> exp.Expr:
    from sqlglot import exp

    extracted: exp.Expr = exp.Anonymous(
        this="json_extract_string",
        expressions=[
            exp.column(root, quoted=not _SIMPLE_KEY_RE.match(root)),
            exp.Literal.string(json_path(keys)),
        ],
    )
    target = _context_type(node, root.lower() in numeric_roots)
    if target is not None:
        extracted = exp.TryCast(this=extracted, to=exp.DataType.build(target))
    parent = node.parent
    if isinstance(parent, exp.Select) and node.arg_key == "expressions":
        # a selected path keeps a readable column name: `metadata.model` comes back as `model`
        extracted = exp.alias_(extracted, str(keys[-1]), quoted=True)
    return extracted


_COMPARISONS = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ")
_ARITHMETIC = ("Add", "Sub", "Mul", "Div", "Mod", "Neg", "IntDiv")
_NUMERIC_AGGREGATES = (
    "Avg",
    "Sum",
    "Stddev",
    "StddevPop",
    "StddevSamp",
    "Variance",
    "VariancePop",
    "Median",
    "Quantile",
    "PercentileCont",
    "PercentileDisc",
)
_TEXT_CONTEXTS = (
    "Like",
    "ILike",
    "Is",
    "Cast",
    "TryCast",
    "RegexpLike",
    "Lower",
    "Upper",
    "Length",
    "Concat",
    "DPipe",
    "StartsWith",
)


def _context_type(node: exp.Expr, numeric_root: bool) -> str | None:
    """The DuckDB type a path should be read as where it stands (None: keep the extracted string)."""
    from sqlglot import exp

    child, parent = node, node.parent
    while isinstance(parent, exp.Paren):
        child, parent = parent, parent.parent
    kind = type(parent).__name__ if parent is not None else ""
    if parent is not None and kind in _COMPARISONS:
        other = parent.expression if child is parent.this else parent.this
        return _type_of_literal(other) or ("DOUBLE" if numeric_root else None)
    if isinstance(parent, exp.In) and child is parent.this:
        types = {_type_of_literal(e) for e in parent.expressions}
        return types.pop() if len(types) == 1 and None not in types else ("DOUBLE" if numeric_root else None)
    if isinstance(parent, exp.Between) and child is parent.this:
        return _type_of_literal(parent.args.get("low")) or ("DOUBLE" if numeric_root else None)
    if kind in _ARITHMETIC or kind in _NUMERIC_AGGREGATES:
        return "DOUBLE"
    if isinstance(parent, exp.Where | exp.Having | exp.Not | exp.And | exp.Or):
        return "BOOLEAN"
    if kind in _TEXT_CONTEXTS:
        return None
    return "DOUBLE" if numeric_root else None


def _type_of_literal(other: exp.Expr | None) -> str | None:
    from sqlglot import exp

    while isinstance(other, exp.Paren | exp.Neg):
        other = other.this
    if isinstance(other, exp.Literal):
        return None if other.is_string else "DOUBLE"
    if isinstance(other, exp.Boolean):
        return "BOOLEAN"
    if other is not None and _is_time_expression(other):
        return "TIMESTAMPTZ"
    return None


def _is_time_expression(node: exp.Expr) -> bool:
    from sqlglot import exp

    if isinstance(node, exp.CurrentTimestamp | exp.CurrentDate | exp.Interval):
        return True
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("now", "current_timestamp", "today"):
        return True
    if isinstance(node, exp.Cast | exp.TryCast):
        return node.to.is_type(*exp.DataType.TEMPORAL_TYPES)
    if isinstance(node, exp.Add | exp.Sub):
        return _is_time_expression(node.this) or _is_time_expression(node.expression)
    return False
