"""The Braintrust backend: spans read with SQL from a Braintrust project, datasets and
experiments in the target org, uploads verified by reading back, `inspect sql` through `/btql`.

Logins happen on first use, one per org (the source org for spans, the target org for
everything else)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from facetopt.errors import BraintrustError, UploadVerificationError
from facetopt.services.backends.protocol import RowsUploaded, not_stored
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.clients.braintrust import BraintrustConnection
    from facetopt.clients.local.store import LocalStore
    from facetopt.domain.dataset import DatasetRow
    from facetopt.domain.experiments import EvalRow, ExperimentRecord
    from facetopt.domain.sql import SqlResult
    from facetopt.services.backends.braintrust_source import BraintrustSpanSource
    from facetopt.services.backends.protocol import ExperimentListing, ExperimentResolver
    from facetopt.services.backends.publishers import BraintrustPublisher


def braintrust_connection(settings: Settings) -> Any:
    """A login to the org holding the experiments and datasets (the target org)."""
    from facetopt.clients.braintrust import connect

    return connect(
        settings.braintrust_api_key,
        app_url=settings.braintrust_app_url,
        org_name=settings.target_org,
        api_url_override=settings.braintrust_api_url,
    )


class BraintrustBackend:
    name = "braintrust"
    remote = True

    def __init__(self, settings: Settings):
        self.settings = settings
        self._reader: BraintrustConnection | None = None  # reads: datasets, experiments, SQL
        self._source: BraintrustConnection | None = None  # the source org's login (dataset create)
        self._target: BraintrustConnection | None = None  # writes: the target org's login

    def connection(self) -> BraintrustConnection:
        """The target org's login for reading, opened on first use."""
        if self._reader is None:
            self._reader = braintrust_connection(self.settings)
        return self._reader

    def _target_connection(self) -> BraintrustConnection:
        from facetopt.services.backends.braintrust_source import target_connection

        if self._target is None:
            self._target = target_connection(self.settings, self._source)
        return self._target

    def span_source(self, *, no_writes: bool) -> BraintrustSpanSource:
        """Log in to the source org and resolve the source project; unless `no_writes`, log in to
        the target org now too, so a bad target fails before any label is paid for."""
        from facetopt.clients.braintrust import resolve_project
        from facetopt.services.backends.braintrust_source import (
            BraintrustSpanSource,
            connect_with,
            proxy_base_url,
        )

        settings = self.settings
        source_name = settings.require("source_project", "--source-project", "FACET_OPTIMIZER_SOURCE_PROJECT")
        self._source = connect_with(settings, settings.source_org)
        project = resolve_project(self._source, source_name)
        if not settings.braintrust_proxy_url and self._source.proxy_url:
            # labels bought with the Braintrust key go through the org's proxy from the login reply
            settings.braintrust_proxy_url = proxy_base_url(self._source.proxy_url)
        source = BraintrustSpanSource(self._source, project)
        if no_writes:
            return source
        target = self._target_connection()
        if target is not self._source:
            source.info.notes.append(
                f"reading from org {self._source.org_name!r}, writing the dataset to org {target.org_name!r}"
            )
        return source

    def dataset_rows(self, project: str, dataset: str, *, must_exist: bool = False) -> list[DatasetRow]:
        from facetopt.clients.braintrust import read_dataset_rows

        return read_dataset_rows(self.connection(), project, dataset)

    def upload_rows(
        self, project: str, dataset: str, rows: Sequence[DatasetRow], *, retry: str | None = None
    ) -> RowsUploaded:
        """The target project is created when missing."""
        from facetopt.clients.braintrust import upload_rows

        conn = self._target_connection()
        try:
            result = upload_rows(conn, project, dataset, rows, flush_deadline=self.settings.flush_deadline)
        except UploadVerificationError as error:
            if retry:
                error.hint = retry
            raise
        except BraintrustError as error:  # a failed write or read-back: say how to resume too
            if retry:
                error.hint = f"{error.hint}; then {retry}" if error.hint else retry
            raise
        return RowsUploaded(
            written=result.written,
            verified=result.verified,
            dataset_id=result.dataset_id,
            org=conn.org_name,
            dataset_rows=result.dataset_rows,
        )

    def experiments(self, store: LocalStore | None) -> list[ExperimentRecord]:
        return self.experiment_listing(store, None).records

    def experiment_listing(self, store: LocalStore | None, limit: int | None) -> ExperimentListing:
        """The project's experiments, newest first and paged, merged with the registry's runs."""
        from facetopt.services.backends.braintrust_experiments import list_project_experiments

        registry = store.experiments() if store is not None else []
        return list_project_experiments(self.connection(), self.settings, registry, limit)

    def experiment_by_id(self, experiment_id: str) -> ExperimentRecord | None:
        from facetopt.services.backends.braintrust_experiments import project_experiment

        return project_experiment(self.connection(), experiment_id)

    def experiments_where(self) -> str:
        from facetopt.services.backends.braintrust_experiments import experiments_project

        return f"project {experiments_project(self.settings)!r} and the registry"

    def experiment_rows(self, record: ExperimentRecord) -> list[EvalRow]:
        if record.backend != self.name:  # a local run: its rows were only ever in the store
            raise not_stored(record)
        from facetopt.clients.braintrust import fetch_experiment_rows

        spans = fetch_experiment_rows(self.connection(), record.experiment_id)
        return [eval_row_from_span(span) for span in spans]

    def confirmed_results(self, experiment_id: str) -> int | None:
        from facetopt.clients.braintrust import count_experiment_results

        return count_experiment_results(self.connection(), experiment_id)

    def experiment_project_id(self, project: str) -> str | None:
        from facetopt.clients.braintrust import resolve_project

        return resolve_project(self.connection(), project, create=True).id

    def sql(self, sql: str, resolve: ExperimentResolver, store: LocalStore | None) -> SqlResult:
        from facetopt.services.backends.braintrust_sql import run_braintrust_sql

        return run_braintrust_sql(self.connection, self.settings, resolve, sql)

    def publisher(self) -> BraintrustPublisher:
        from facetopt.services.backends.publishers import BraintrustPublisher

        return BraintrustPublisher(self._target_connection)


def eval_row_from_span(span: dict[str, Any]) -> EvalRow:
    """A row of `fetch_experiment_rows` (root eval span with its scores joined on) as an EvalRow;
    its `id` is already the dataset row id."""
    from facetopt.domain.experiments import EvalRow

    metadata = _as_dict(span.get("metadata"))
    inputs = _as_dict(span.get("input"))
    scores = {
        str(name): (None if value is None else float(value))
        for name, value in _as_dict(span.get("scores")).items()
        if value is None or isinstance(value, int | float)
    }
    return EvalRow(
        id=str(span.get("id")),
        facet_name=str(inputs.get("facet_name") or metadata.get("facet_name") or ""),
        split=metadata.get("split"),
        input=inputs,
        output=_as_text(span.get("output")),
        expected=_as_text(span.get("expected")),
        scores=scores,
        metadata=metadata,
        error=_as_text(span.get("error")),
    )


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


__all__ = ["BraintrustBackend", "braintrust_connection", "eval_row_from_span"]
