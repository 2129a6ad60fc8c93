"""sqlglot's parse errors said in terms of the SQL the user wrote.

sqlglot reports the parser's view ("Required keyword: 'this' missing for <class '...Where'>"); a
user needs where it broke and what is missing there ("WHERE has no condition").
"""

from __future__ import annotations

import re
from typing import Any

_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]+\.(\w+)'>")
_OPERATORS = {
    "EQ": "'='",
    "NEQ": "'<>'",
    "GT": "'>'",
    "GTE": "'>='",
    "LT": "'<'",
    "LTE": "'<='",
    "Add": "'+'",
    "Sub": "'-'",
    "Mul": "'*'",
    "Div": "'/'",
    "And": "AND",
    "Or": "OR",
    "Like": "LIKE",
    "ILike": "ILIKE",
    "In": "IN",
    "Is": "IS",
}
_CLAUSES = {
    "Where": "WHERE has no condition",
    "Having": "HAVING has no condition",
    "Group": "GROUP BY names nothing to group by",
    "Order": "ORDER BY names nothing to sort by",
    "Limit": "LIMIT has no number",
    "Not": "NOT has no condition",
}
_STATEMENT_STARTS = {"SELECT", "WITH", "(", "FROM", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP"}


def describe_parse_error(sql: str, exc: Exception, expect_select: bool) -> str:
    """One line: where the SQL stops parsing and what is wrong there."""
    words = sql.strip().split()
    first = words[0].upper() if words else ""
    if expect_select and first not in _STATEMENT_STARTS:
        return f"cannot parse SQL: it should start with SELECT, not {words[0]!r}"
    errors: list[dict[str, Any]] = getattr(exc, "errors", None) or []
    if not errors:
        text = str(exc).strip()
        return f"cannot parse SQL: {text.splitlines()[0] if text else type(exc).__name__}"
    error = errors[0]
    where = f"line {error.get('line')}, column {error.get('col')}"
    near = (str(error.get("start_context") or "") + str(error.get("highlight") or "")).strip()
    near_text = f" (at {near[-40:]!r})" if near else ""
    problem = _plain(str(error.get("description") or ""), str(error.get("highlight") or ""))
    return f"cannot parse SQL at {where}{near_text}: {problem}"


def _plain(description: str, highlight: str) -> str:
    missing = _MISSING.fullmatch(description)
    if missing is None:
        if description.startswith("Expecting )"):
            return "a '(' is never closed"
        if description.startswith("Invalid expression / Unexpected token"):
            return "a ')' without its '('" if highlight == ")" else f"unexpected {highlight!r}"
        return description or "the statement is incomplete"
    node = missing.group(2)
    if node in _CLAUSES:
        return _CLAUSES[node]
    if node in _OPERATORS:
        return f"{_OPERATORS[node]} has nothing on one side"
    return f"an incomplete {node.upper()} expression"
