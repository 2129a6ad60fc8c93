"""`facetopt inspect sql` on the local backend: Braintrust-dialect SQL run by DuckDB over the store.

`dataset('<name>')` and `experiment('<id, name, latest or previous>')` become subqueries over the
store's tables with Braintrust's field names: id, input, output, expected, metadata, scores, tags,
error (input, metadata, scores and tags are JSON), so `input.facet_name`, `metadata.split` and
`scores.binary_decision_match` work as they do on Braintrust.
"""

from __future__ import annotations

import json
from typing import Any

from facetopt.errors import InputError, NotFoundError
from facetopt.services.experiments import Experiments, resolve_reference
from facetopt.services.inspect import SqlResult

JSON_COLUMNS = {"input", "metadata", "scores", "tags"}
MAX_ROWS = 10_000

_DATASET_VIEW = """(SELECT id, json_extract("row", '$.input') AS input,
    json_extract_string("row", '$.expected') AS expected, json_extract("row", '$.metadata') AS metadata,
    json_extract("row", '$.tags') AS tags, updated AS created
  FROM dataset_rows WHERE project = {project} AND dataset = {dataset})"""

_EXPERIMENT_VIEW = """(SELECT id, json_extract("row", '$.input') AS input,
    json_extract_string("row", '$.output') AS output, json_extract_string("row", '$.expected') AS expected,
    json_extract("row", '$.metadata') AS metadata, json_extract("row", '$.scores') AS scores,
    CAST('[]' AS JSON) AS tags, json_extract_string("row", '$.error') AS error,
    facet_name, split, experiment_id
  FROM experiment_rows WHERE experiment_id = {experiment_id})"""


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalTables:
    """Resolves the table functions of a query to subqueries over the local store."""

    def __init__(self, experiments: Experiments):
        self.experiments = experiments
        self.store = experiments.store

    def __call__(self, kind: str, argument: str) -> str:
        if kind == "dataset":
            project, name = self.dataset(argument)
            return _DATASET_VIEW.format(project=sql_literal(project), dataset=sql_literal(name))
        if kind == "experiment":
            record = resolve_reference(self.experiments.records(), argument, self.experiments.scope())
            return _EXPERIMENT_VIEW.format(experiment_id=sql_literal(record.experiment_id))
        raise InputError(
            f"{kind}('{argument}') is not available on the local backend",
            hint="query dataset('<name>') or experiment('<id or name>'); source spans are NDJSON files",
        )

    def dataset(self, argument: str) -> tuple[str, str]:
        """(project, dataset) for `name`, or `project/name`; the target project breaks ties."""
        known = [(project, name) for project, name, _ in self.store.list_datasets()]
        if "/" in argument and tuple(argument.split("/", 1)) in known:
            project, name = argument.split("/", 1)
            return project, name
        matches = [(project, name) for project, name in known if name == argument]
        target = self.experiments.settings.target_project
        if target and (target, argument) in matches:
            return target, argument
        if len(matches) == 1:
            return matches[0]
        listed = ", ".join(f"{project}/{name}" for project, name in known) or "(none)"
        if matches:
            raise InputError(
                f"dataset {argument!r} exists in {len(matches)} projects",
                hint=f"write dataset('<project>/{argument}') or pass --target-project; "
                f"local datasets: {listed}",
            )
        raise NotFoundError(f"no local dataset named {argument!r}", hint=f"local datasets: {listed}")


def run_local_sql(experiments: Experiments, sql: str) -> SqlResult:
    import duckdb

    from facetopt.clients.sql_dialect import to_duckdb_query

    if experiments.store is None:
        raise NotFoundError(
            "no local store yet",
            hint="run `facetopt dataset create` or `facetopt eval`, or pass --output-root",
        )
    executed = to_duckdb_query(sql, LocalTables(experiments), JSON_COLUMNS)
    try:
        cursor = experiments.store.conn.cursor()
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
    result = SqlResult(backend="local", query=sql, executed=executed, columns=columns, rows=rows)
    if len(fetched) > MAX_ROWS:
        result.notes.append(f"only the first {MAX_ROWS} rows are shown: add a LIMIT")
    return result


def _value(value: Any, is_json: bool) -> Any:
    if is_json and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
