"""Turn settings into a dataset-create request on the command's backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facetopt.domain.dataset import DatasetCreateSummary
from facetopt.errors import InputError
from facetopt.services.backends import Backend, open_backend
from facetopt.services.backends.sources import SourceQuery
from facetopt.services.dataset.create import CreateRequest, create_dataset
from facetopt.services.progress import Progress
from facetopt.settings import Settings


def run_dataset_create(
    settings: Settings,
    *,
    root_span_ids: list[str] | None,
    root_span_id_file: Path | None,
    skip_upload: bool,
    dry_run: bool,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
    backend: Backend | None = None,
) -> DatasetCreateSummary:
    backend = backend if backend is not None else open_backend(settings, announce)
    target_project = settings.project_or_default  # the original's chain and default
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    ids = read_root_span_ids(root_span_ids, root_span_id_file)
    positive, negative = settings.positive_limit, settings.negative_limit
    limit = settings.limit if settings.limit is not None else 5 * (positive + negative)
    query = SourceQuery(
        source_models=settings.source_model_list,
        created_after_sql=settings.created_after_sql,
        created_before_sql=settings.created_before_sql,
        extra_where_sql=settings.extra_where_sql,
        root_span_ids=ids,
        limit=None if ids else limit,
    )
    # --skip-upload and --dry-run keep the rows on this machine; the local store is on it already
    keep_local = skip_upload and backend.remote
    source = backend.span_source(no_writes=keep_local or dry_run)
    for message in source.info.notes:
        announce(message)
    source.info.notes = []
    request = CreateRequest(
        source=source,
        backend=backend,
        target_project=target_project,
        dataset=dataset,
        query=query,
        facet_name=settings.facet_name,
        positive_limit=positive,
        negative_limit=negative,
        validation_fraction=settings.validation_fraction,
        test_fraction=settings.test_fraction,
        dry_run=dry_run,
        upload=not keep_local,
    )
    return create_dataset(request, settings, progress)


def read_root_span_ids(values: list[str] | None, id_file: Path | None) -> list[str] | None:
    ids = [v.strip() for v in values or [] if v.strip()]
    if id_file is not None:
        if not id_file.is_file():
            raise InputError(
                f"root span id file not found: {id_file}", hint="pass an existing file to --root-span-id-file"
            )
        try:
            text = id_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"root span id file {id_file} is not UTF-8 text (byte {exc.start})",
                hint="save it as UTF-8 with one root span id per line",
            ) from None
        from_file = [
            line.strip()
            for line in text.replace(",", "\n").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        if not from_file:
            raise InputError(
                f"root span id file {id_file} holds no root span id",
                hint="put one root span id per line, or drop --root-span-id-file to read the time window",
            )
        ids += from_file
    return list(dict.fromkeys(ids)) or None
