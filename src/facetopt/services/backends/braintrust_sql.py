"""`facetopt inspect sql` on the Braintrust backend: the user's SQL sent to `/btql`, with each table
function's name (or latest / previous) replaced by the object's id first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facetopt.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from facetopt.services.experiments import Experiments
    from facetopt.services.inspect import SqlResult

Connect = Callable[[], Any]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
SQL_HINT = (
    "check the SQL against Braintrust's dialect: one SELECT over project_logs('<id>'), dataset('<id>') "
    "or experiment('<id>'), no joins or subqueries"
)


def run_braintrust_sql(connection: Connect, experiments: Experiments, sql: str) -> SqlResult:
    from facetopt.clients.braintrust import btql
    from facetopt.errors import BraintrustError
    from facetopt.services.inspect import SqlResult

    sent = with_braintrust_ids(connection, experiments, sql)
    try:
        reply = btql(connection(), sent, hint=SQL_HINT)
    except BraintrustError as error:
        if error.message.startswith("Braintrust rejected the SQL query"):
            raise InputError(error.message, hint=error.hint) from None
        raise
    data = reply.get("data") or []
    columns: list[str] = []
    for row in data:
        columns.extend(key for key in row if key not in columns)
    return SqlResult(
        backend="braintrust",
        query=sql,
        executed=sent if sent != sql else None,
        columns=columns,
        rows=data,
        cursor=reply.get("cursor"),
    )


def with_braintrust_ids(connection: Connect, experiments: Experiments, sql: str) -> str:
    """The SQL with each table function's name (or latest / previous) replaced by the object's id.

    Only the string literal is spliced, at the position the SQL tokenizer reports, so the rest of
    the text reaches Braintrust exactly as written."""
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        tokens = Tokenizer().tokenize(sql)
    except TokenError:
        return sql  # let the server report the syntax error
    pieces, last = [], 0
    for i in range(len(tokens) - 3):
        name, opening, argument, closing = tokens[i : i + 4]
        kind = name.text.lower()
        if (
            kind in ("project_logs", "dataset", "experiment")
            and opening.token_type == TokenType.L_PAREN
            and argument.token_type == TokenType.STRING
            and closing.token_type == TokenType.R_PAREN
        ):
            object_id = braintrust_object_id(connection, experiments, kind, argument.text)
            if object_id != argument.text:
                pieces += [sql[last : argument.start], "'" + object_id.replace("'", "''") + "'"]
                last = argument.end + 1
    return "".join(pieces) + sql[last:]


def braintrust_object_id(connection: Connect, experiments: Experiments, kind: str, name: str) -> str:
    from facetopt.clients.braintrust import (
        resolve_dataset_id,
        resolve_experiment_id,
        resolve_project,
    )

    if _UUID_RE.match(name):
        return name
    settings = experiments.settings
    if kind == "project_logs":
        return resolve_project(connection(), name).id
    project = settings.dataset_project or settings.target_project
    if kind == "dataset":
        if not project:
            raise InputError(
                f"dataset('{name}') needs the project that holds it",
                hint="pass --target-project (or FACET_OPTIMIZER_TARGET_PROJECT), or give the dataset id",
            )
        return resolve_dataset_id(connection(), resolve_project(connection(), project).id, name)
    experiment_project = settings.project or project
    try:
        record = experiments.resolve(name)
    except NotFoundError:
        if not experiment_project:
            raise
    else:
        if record.backend == "braintrust":
            return record.experiment_id
        if not experiment_project:
            raise InputError(
                f"experiment {name!r} is a {record.backend} run, not on Braintrust",
                hint="run it with --backend local, or name a Braintrust experiment",
            )
    conn = connection()
    return resolve_experiment_id(conn, resolve_project(conn, experiment_project).id, name)
