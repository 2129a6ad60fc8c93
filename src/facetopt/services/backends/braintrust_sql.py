"""`facetopt inspect sql` on the Braintrust backend: the user's SQL sent to `/btql`, with each table
function's name (or latest / previous) replaced by the object's id first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facetopt.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from facetopt.domain.sql import SqlResult
    from facetopt.services.backends.protocol import ExperimentResolver
    from facetopt.settings import Settings

Connect = Callable[[], Any]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
SQL_HINT = (
    "check the SQL against Braintrust's dialect: one SELECT over project_logs('<id>'), dataset('<id>') "
    "or experiment('<id>'), no joins or subqueries"
)


def run_braintrust_sql(
    connection: Connect, settings: Settings, resolve: ExperimentResolver, sql: str
) -> SqlResult:
    from facetopt.clients.braintrust import btql
    from facetopt.domain.sql import SqlResult
    from facetopt.errors import BraintrustError

    sent = with_braintrust_ids(connection, settings, resolve, sql)
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


def with_braintrust_ids(
    connection: Connect, settings: Settings, resolve: ExperimentResolver, sql: str
) -> str:
    """The SQL with each table function's name (or latest / previous) replaced by the object's id."""
    from facetopt.clients.braintrust import with_object_ids

    return with_object_ids(
        sql, lambda kind, name: braintrust_object_id(connection, settings, resolve, kind, name)
    )


def braintrust_object_id(
    connection: Connect, settings: Settings, resolve: ExperimentResolver, kind: str, name: str
) -> str:
    from facetopt.clients.braintrust import (
        resolve_dataset_id,
        resolve_experiment_id,
        resolve_project,
    )

    if _UUID_RE.match(name):
        return name
    if kind == "project_logs":
        return resolve_project(connection(), name).id
    project = settings.dataset_project or settings.project or settings.target_project
    if kind == "dataset":
        if not project:
            raise InputError(
                f"dataset('{name}') needs the project that holds it",
                hint="pass --target-project (or FACET_OPTIMIZER_TARGET_PROJECT), or give the dataset id",
            )
        return resolve_dataset_id(connection(), resolve_project(connection(), project).id, name)
    experiment_project = settings.project or project
    try:
        record = resolve(name)
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
