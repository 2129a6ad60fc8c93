"""Turn flags and settings into a dataset-create request for the chosen backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from facetopt.domain.dataset import DatasetCreateSummary
from facetopt.errors import InputError
from facetopt.services.dataset.create import CreateRequest, create_dataset
from facetopt.services.dataset.sources import LocalSpanSource, SourceQuery, read_root_span_ids
from facetopt.services.progress import Progress
from facetopt.settings import Settings, load_settings

BACKENDS = ("braintrust", "local")


def choose_backend(settings: Settings, announce: Callable[[str], None]) -> str:
    if settings.backend and settings.backend not in BACKENDS:
        raise InputError(
            f"unknown backend {settings.backend!r}", hint="use --backend braintrust or --backend local"
        )
    backend = settings.resolved_backend()
    if not settings.backend:
        why = "BRAINTRUST_API_KEY is set" if backend == "braintrust" else "no BRAINTRUST_API_KEY is set"
        announce(f"backend: {backend} ({why}; choose with --backend)")
    return backend


def build_settings(
    env_file: Path | None, flags: dict[str, Any], warn: Callable[[str], None] | None = None
) -> Settings:
    backend = flags.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}", hint="use --backend braintrust or --backend local")
    return load_settings(env_file, warn=warn, **flags)


def run_dataset_create(
    *,
    env_file: Path | None,
    flags: dict[str, Any],
    root_span_ids: list[str] | None,
    root_span_id_file: Path | None,
    skip_upload: bool,
    dry_run: bool,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
) -> DatasetCreateSummary:
    settings = build_settings(env_file, flags, warn)
    backend = choose_backend(settings, announce)
    target_project = settings.project_or_default  # the original's chain and default
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    ids = read_root_span_ids(root_span_ids, root_span_id_file)
    positive, negative = settings.positive_limit, settings.negative_limit
    limit = settings.limit if settings.limit is not None else 5 * (max(positive, 0) + max(negative, 0))
    query = SourceQuery(
        source_models=settings.source_model_list,
        created_after_sql=settings.created_after_sql,
        created_before_sql=settings.created_before_sql,
        extra_where_sql=settings.extra_where_sql,
        root_span_ids=ids,
        limit=None if ids else limit,
    )
    uploader = None
    if backend == "local":
        files = [Path(p) for p in (settings.source_files or "").split(",") if p.strip()]
        source = LocalSpanSource(files, settings.source_project)
    else:
        from facetopt.services.dataset.braintrust import braintrust_source_and_uploader

        source, uploader = braintrust_source_and_uploader(
            settings, target_project, dataset, skip_upload or dry_run
        )
    for message in source.info.notes:
        announce(message)
    request = CreateRequest(
        source=source,
        target_project=target_project,
        dataset=dataset,
        query=query,
        facet_name=settings.facet_name,
        positive_limit=positive,
        negative_limit=negative,
        validation_fraction=settings.validation_fraction,
        dry_run=dry_run,
        backend=backend,
        uploader=uploader,
    )
    source.info.notes = []
    return create_dataset(request, settings, progress)
