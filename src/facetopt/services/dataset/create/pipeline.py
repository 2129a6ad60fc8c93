"""`dataset create` step by step: query, parse, read final facets, sample (`spans`); stop at the
estimate on --dry-run (`dry_run`); label, split, report (`rows`); store through the backend."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.clients import artifacts
from facetopt.clients.llm.client import Endpoint, resolve_labeller
from facetopt.clients.local.store import LedgerEntry, StoreHold
from facetopt.domain.dataset import DatasetCreateSummary, DatasetRow
from facetopt.domain.spans import FacetCall
from facetopt.errors import FacetoptError, SourceError, UploadVerificationError
from facetopt.facets.data.buckets import newest_final_facets
from facetopt.services.cost import UsageMeter
from facetopt.services.dataset.create.dry_run import finish_dry_run, labelling_estimate
from facetopt.services.dataset.create.request import CreateRequest, check_request
from facetopt.services.dataset.create.rows import (
    build_labelled_rows,
    label_selection,
    read_targets,
    report_rows,
)
from facetopt.services.dataset.create.spans import (
    Selection,
    candidate_roots,
    finish_selection,
    query_candidates,
    read_final_facets,
)
from facetopt.services.dataset.labelling import LabelOutcome, start_client
from facetopt.services.dataset.placement import remember_written
from facetopt.services.progress import Progress, SilentProgress
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.clients.llm.chat_http import ChatClient


def create_dataset(
    req: CreateRequest, settings: Settings, progress: Progress | None = None
) -> DatasetCreateSummary:
    """Query, read final facets, parse and sample (labelling the newest calls meanwhile), split,
    report, store: one function per step."""
    check_request(req, settings)
    progress = progress or SilentProgress()
    endpoint = resolve_labeller(settings)
    run_dir = artifacts.new_run_dir(settings.output_root)
    summary = _start_summary(req, endpoint, run_dir)
    candidates = query_candidates(req.source, req.query, run_dir, progress)
    # built while DuckDB reads the final facets; unused when every label is cached
    client = None if req.dry_run else _start_client(settings, endpoint)
    final_rows = read_final_facets(req.source, candidate_roots(candidates), run_dir, progress)
    selection = Selection(req, candidates, newest_final_facets(final_rows))
    summary.max_cost = settings.max_cost
    if req.dry_run:
        selected = finish_selection(selection, final_rows, run_dir, summary)
        summary.usage = [labelling_estimate(settings, selected, endpoint)]
        return finish_dry_run(summary, selected, run_dir)
    targets = read_targets(req, settings, summary)
    # the newest calls are labelled while older candidates are parsed and sampled; --facet-name
    # first checks that every call shares one prompt, so nothing is paid for a run it refuses
    if req.facet_name:
        batches: Iterable[list[FacetCall]] = [finish_selection(selection, final_rows, run_dir, summary)]
    else:
        batches = _sampled(selection, final_rows, run_dir, summary)
    progress.stage(f"sampling and labelling calls with {endpoint.model} ({endpoint.label})")
    # on the local backend, from the last answer on, the steps' short store sessions share one open
    # store (not while a Braintrust upload runs: other commands may use the store meanwhile)
    with StoreHold(settings.store_path, active=req.backend.name == "local") as hold:
        labelled = label_selection(settings, batches, endpoint, run_dir, progress, client, hold)
        if not selection.selected:
            raise SourceError(
                "no facet calls were selected for labelling", hint="check --facet-name and the limits"
            )
        hold.start()
        _finish(req, settings, selection.selected, labelled, endpoint, summary, targets)
    return summary


def _finish(
    req: CreateRequest,
    settings: Settings,
    selected: list[FacetCall],
    labelled: tuple[LabelOutcome, UsageMeter],
    endpoint: Endpoint,
    summary: DatasetCreateSummary,
    targets: tuple[list[DatasetRow], list[LedgerEntry]],
) -> None:
    """Split, report and store the labelled rows (the summary says where they went)."""
    run_dir = Path(summary.run_dir)
    rows, failures = build_labelled_rows(req, settings, selected, labelled, endpoint, summary, targets)
    report_rows(req, summary, rows, failures, endpoint.simulated)
    if not req.upload:
        summary.warnings.append(
            f"--skip-upload: nothing was written to {req.backend.name}; the rows are only in "
            f"{run_dir / 'dataset_rows.jsonl'} (upload them with `{_upload_command(run_dir, settings)}`)"
        )
    artifacts.write_json(run_dir / "summary.json", summary)  # before uploading: `dataset upload` reads it
    if req.upload:
        _upload(req, summary, rows, _upload_command(run_dir, settings))
        noted = remember_written(settings, req.backend.name, req.target_project, req.dataset, rows)
        summary.warnings.extend([noted] if noted else [])
        artifacts.write_json(run_dir / "summary.json", summary)


def _sampled(
    selection: Selection, final_rows: list[dict], run_dir: Path, summary: DatasetCreateSummary
) -> Iterator[list[FacetCall]]:
    """The selection's batches, then its report (written while the first calls are in flight)."""
    yield from selection.batches()
    finish_selection(selection, final_rows, run_dir, summary)


def _start_client(settings: Settings, endpoint: Endpoint) -> Future[ChatClient]:
    return start_client(
        endpoint,
        timeout=settings.timeout_for(endpoint.model),
        concurrency=settings.ground_truth_concurrency,
        deadline=settings.call_deadline,
    )


def _start_summary(req: CreateRequest, endpoint: Endpoint, run_dir: Path) -> DatasetCreateSummary:
    summary = DatasetCreateSummary(
        run_id=run_dir.name,
        run_dir=str(run_dir),
        backend=req.backend.name,
        dry_run=req.dry_run,
        source_project=req.source.info.project_name,
        target_project=req.target_project,
        dataset=req.dataset,
        ground_truth_model=endpoint.model,
        ground_truth_endpoint=endpoint.label,
        simulated_roles=["labeller"] if endpoint.simulated else [],
    )
    summary.warnings.extend(req.notes + req.source.info.notes)
    if endpoint.key_note:
        summary.warnings.append(endpoint.key_note)
    return summary


def _upload_command(run_dir: Path, settings: Settings) -> str:
    """The `dataset upload` command that sends this run's rows where this run would have."""
    org = f" --target-org {shlex.quote(settings.target_org)}" if settings.target_org else ""
    return f"facetopt dataset upload --run-dir {shlex.quote(str(run_dir))}{org}"


def _upload(req: CreateRequest, summary: DatasetCreateSummary, rows: list[DatasetRow], command: str) -> None:
    """Write the rows to the backend's dataset, verified by reading back; when that fails they stay
    in the run folder, and the error says how to upload them again."""
    run_dir = Path(summary.run_dir)
    try:
        uploaded = req.backend.upload_rows(req.target_project, req.dataset, rows)
        summary.counts.uploaded_rows = uploaded.verified
        if uploaded.dataset_rows is not None:
            summary.counts.dataset_total_rows = uploaded.dataset_rows
            # rows the dataset held before this run, whether this run wrote them again or not
            new = len({r.id for r in rows}) - (summary.counts.existing_rows or 0)
            summary.counts.rows_from_earlier_runs = max(0, uploaded.dataset_rows - new)
    except FacetoptError as error:
        again = f"upload them again with `{command}`"
        kept = f"the {len(rows)} rows are kept in {run_dir / 'dataset_rows.jsonl'}"
        if isinstance(error, UploadVerificationError) or not error.hint:
            error.hint = f"{kept}; {again}"
        else:
            error.hint = f"{error.hint}; then {again}"
        summary.warnings.append(f"upload failed: {error.message}")
        artifacts.write_json(run_dir / "summary.json", summary)
        raise


def load_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
