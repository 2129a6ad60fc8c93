"""`dataset create` step by step: query, parse, read final facets, sample (`spans`); stop at the
estimate on --dry-run (`dry_run`); label, split, report (`rows`); store through the backend."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from facetopt.clients import artifacts
from facetopt.clients.llm.client import Endpoint, resolve_labeller
from facetopt.domain.dataset import DatasetCounts, DatasetCreateSummary, DatasetRow
from facetopt.errors import FacetoptError, SourceError, UploadVerificationError
from facetopt.facets.data.buckets import assign_weak_buckets, newest_final_facets
from facetopt.services.dataset.create.dry_run import finish_dry_run, labelling_estimate
from facetopt.services.dataset.create.request import CreateRequest, check_request
from facetopt.services.dataset.create.rows import label_and_build_rows, report_rows
from facetopt.services.dataset.create.spans import (
    parse_candidates,
    query_candidates,
    read_final_facets,
    report_source_problems,
    select_calls,
)
from facetopt.services.dataset.placement import remember_written
from facetopt.services.progress import Progress, SilentProgress
from facetopt.settings import Settings


def create_dataset(
    req: CreateRequest, settings: Settings, progress: Progress | None = None
) -> DatasetCreateSummary:
    """Query, parse, read final facets, sample, label, split, report, store: one function per step."""
    check_request(req, settings)
    progress = progress or SilentProgress()
    endpoint = resolve_labeller(settings)
    run_dir = artifacts.new_run_dir(settings.output_root)
    summary = _start_summary(req, endpoint, run_dir)
    candidates = query_candidates(req.source, req.query, run_dir, progress)
    calls, parse_failures = parse_candidates(req, candidates, summary)
    final_rows = read_final_facets(req.source, calls, run_dir, progress)
    summary.weak_bucket_sources = assign_weak_buckets(calls, newest_final_facets(final_rows))
    artifacts.write_jsonl(run_dir / "parsed_calls.jsonl", calls)
    selected = select_calls(req, calls, run_dir, summary)
    summary.counts = DatasetCounts(
        candidates=len(candidates),
        final_facets=len(final_rows),
        parsed_calls=len(calls),
        parse_failures=len(parse_failures),
        selected_calls=len(selected),
    )
    report_source_problems(summary, parse_failures)
    summary.max_cost = settings.max_cost
    if req.dry_run:
        summary.usage = [labelling_estimate(settings, selected, endpoint)]
        return finish_dry_run(summary, selected, run_dir)
    if not selected:
        raise SourceError(
            "no facet calls were selected for labelling", hint="check --facet-name and the limits"
        )
    rows, failures = label_and_build_rows(req, settings, selected, endpoint, summary, progress)
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
    return summary


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
