"""The local backend: NDJSON span exports (or the bundled sample) in, the DuckDB store for
datasets, experiments and SQL. Nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.errors import NotFoundError, UploadVerificationError
from facetopt.services.backends.protocol import RowsUploaded, not_stored
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.clients.local.store import LocalStore
    from facetopt.domain.dataset import DatasetRow
    from facetopt.domain.experiments import EvalRow, ExperimentRecord
    from facetopt.domain.sql import SqlResult
    from facetopt.services.backends.protocol import ExperimentListing, ExperimentResolver
    from facetopt.services.backends.publishers import LocalPublisher
    from facetopt.services.backends.sources import LocalSpanSource


class LocalBackend:
    name = "local"
    remote = False

    def __init__(self, settings: Settings):
        self.settings = settings

    def span_source(self, *, no_writes: bool) -> LocalSpanSource:
        from facetopt.services.backends.sources import LocalSpanSource

        files = [Path(p) for p in (self.settings.source_files or "").split(",") if p.strip()]
        return LocalSpanSource(files, self.settings.source_project)

    def dataset_rows(self, project: str, dataset: str, *, must_exist: bool = False) -> list[DatasetRow]:
        from facetopt.clients.local.store import LocalStore

        path = self.settings.store_path
        if not path.exists():
            if must_exist:
                raise self._no_dataset(project, dataset, [])
            return []
        # DuckDB allows one writer: read-only, and closed again before any runner starts
        with LocalStore(path, read_only=True) as store:
            rows = store.read_rows(project, dataset)
            if must_exist and not rows:
                raise self._no_dataset(project, dataset, store.list_datasets())
        return rows

    @staticmethod
    def _no_dataset(project: str, dataset: str, known: list[tuple[str, str, int]]) -> NotFoundError:
        listed = ", ".join(f"{p}/{name} ({count} rows)" for p, name, count in known)
        return NotFoundError(
            f"no local dataset {dataset!r} in project {project!r}",
            hint=(f"local datasets: {listed}" if listed else "create one with `facetopt dataset create`"),
        )

    def upload_rows(
        self, project: str, dataset: str, rows: Sequence[DatasetRow], *, retry: str | None = None
    ) -> RowsUploaded:
        from facetopt.clients.local.store import LocalStore

        with LocalStore(self.settings.store_path) as store:
            written = store.upsert_rows(project, dataset, list(rows))
            stored = store.row_labels(project, dataset)
        sent = {r.id: r.expected for r in rows}
        bad = [i for i, expected in sent.items() if stored.get(i) != expected]
        if bad:
            raise UploadVerificationError(
                f"{len(bad)} of {len(sent)} rows did not arrive in the local dataset {dataset!r}",
                hint=f"check that nothing else writes {self.settings.store_path}, then run the upload again",
            )
        return RowsUploaded(written=written, verified=len(sent), dataset_rows=len(stored))

    def experiments(self, store: LocalStore | None) -> list[ExperimentRecord]:
        return store.experiments() if store is not None else []

    def experiment_listing(self, store: LocalStore | None, limit: int | None) -> ExperimentListing:
        from facetopt.services.backends.protocol import ExperimentListing

        records = self.experiments(store)
        return ExperimentListing(records[:limit], more=limit is not None and len(records) > limit)

    def experiment_by_id(self, experiment_id: str) -> ExperimentRecord | None:
        return None

    def experiments_where(self) -> str:
        return "the registry"

    def experiment_rows(self, record: ExperimentRecord) -> list[EvalRow]:
        raise not_stored(record)

    def confirmed_results(self, experiment_id: str) -> int | None:
        return None

    def experiment_project_id(self, project: str) -> str | None:
        return None

    def sql(self, sql: str, resolve: ExperimentResolver, store: LocalStore | None) -> SqlResult:
        from facetopt.services.backends.local_sql import run_local_sql

        return run_local_sql(sql, resolve, store, self.settings.target_project)

    def publisher(self) -> LocalPublisher:
        from facetopt.services.backends.publishers import LocalPublisher

        return LocalPublisher(self.settings.output_root)
