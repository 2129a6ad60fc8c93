"""`facetopt inspect sql` on the local backend: Braintrust-dialect SQL run by DuckDB over the store.

`dataset('<name>')` and `experiment('<id, name, latest or previous>')` become subqueries over the
store's tables with Braintrust's field names: id, input, output, expected, metadata, scores, tags,
error (input, metadata, scores and tags are JSON), so `input.facet_name`, `metadata.split` and
`scores.binary_decision_match` work as they do on Braintrust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facetopt.clients.local.sql import MAX_ROWS, dataset_view, experiment_view, run_store_sql
from facetopt.clients.local.store import LocalStore
from facetopt.domain.sql import SqlResult
from facetopt.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from facetopt.services.backends.protocol import ExperimentResolver


class LocalTables:
    """Resolves the table functions of a query to subqueries over the local store."""

    def __init__(self, resolve: ExperimentResolver, store: LocalStore, target_project: str | None):
        self.resolve = resolve
        self.store = store
        self.target_project = target_project

    def __call__(self, kind: str, argument: str) -> str:
        if kind == "dataset":
            project, name = self.dataset(argument)
            return dataset_view(project, name)
        if kind == "experiment":
            record = self.resolve(argument)
            return experiment_view(record.experiment_id)
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
        target = self.target_project
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


def run_local_sql(
    sql: str, resolve: ExperimentResolver, store: LocalStore | None, target_project: str | None
) -> SqlResult:
    if store is None:
        raise NotFoundError(
            "no local store yet",
            hint="run `facetopt dataset create` or `facetopt eval`, or pass --output-root",
        )
    found = run_store_sql(store, sql, LocalTables(resolve, store, target_project))
    result = SqlResult(
        backend="local", query=sql, executed=found.executed, columns=found.columns, rows=found.rows
    )
    if found.truncated:
        result.notes.append(f"only the first {MAX_ROWS} rows are shown: add a LIMIT")
    return result
