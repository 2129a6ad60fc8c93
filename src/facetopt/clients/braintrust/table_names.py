"""Table functions named in user SQL (`dataset('name')`), rewritten to the ids Braintrust needs."""

from __future__ import annotations

from collections.abc import Callable

TABLE_FUNCTIONS = ("project_logs", "dataset", "experiment")


def with_object_ids(sql: str, object_id: Callable[[str, str], str]) -> str:
    """The SQL with each table function's string argument replaced by `object_id(kind, argument)`.

    Only the string literal is spliced, at the position the SQL tokenizer reports, so the rest of
    the text reaches Braintrust exactly as written. SQL the tokenizer rejects is returned as is:
    the server reports the syntax error."""
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        tokens = Tokenizer().tokenize(sql)
    except TokenError:
        return sql
    pieces, last = [], 0
    for i in range(len(tokens) - 3):
        name, opening, argument, closing = tokens[i : i + 4]
        kind = name.text.lower()
        if (
            kind in TABLE_FUNCTIONS
            and opening.token_type == TokenType.L_PAREN
            and argument.token_type == TokenType.STRING
            and closing.token_type == TokenType.R_PAREN
        ):
            replacement = object_id(kind, argument.text)
            if replacement != argument.text:
                pieces += [sql[last : argument.start], "'" + replacement.replace("'", "''") + "'"]
                last = argument.end + 1
    return "".join(pieces) + sql[last:]
