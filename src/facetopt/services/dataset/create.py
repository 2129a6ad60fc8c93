"""`facetopt dataset create`: facet LLM spans -> labelled, balanced, split ground-truth rows."""

from __future__ import annotations

import json
import shlex
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from facetopt.clients import artifacts
from facetopt.clients.llm.client import Endpoint, resolve_labeller
from facetopt.clients.prompt_file import FacetPrompt, prompt_sha256, write_new_prompt_file
from facetopt.domain.dataset import DatasetCounts, DatasetCreateSummary, DatasetRow, FailedRow
from facetopt.domain.spans import FacetCall
from facetopt.errors import (
    FacetoptError,
    InputError,
    ModelError,
    NotFoundError,
    SourceError,
    UploadVerificationError,
)
from facetopt.facets.balance import balance_report, balance_warnings
from facetopt.facets.buckets import assign_weak_buckets, newest_final_facets
from facetopt.facets.parsing import parse_span, span_from_raw
from facetopt.facets.rows import RowContext, build_row
from facetopt.facets.sampling import sample_calls
from facetopt.facets.split import assign_splits, split_seed
from facetopt.facets.text import bucket_of
from facetopt.services.backends import Backend
from facetopt.services.dataset.labelling import call_key, label_calls
from facetopt.services.dataset.sources import SourceQuery, SpanSource
from facetopt.services.progress import Progress, SilentProgress
from facetopt.settings import Settings

SIMULATED_PREFIX = "simulated:"


@dataclass
class CreateRequest:
    source: SpanSource
    backend: Backend
    target_project: str
    dataset: str
    query: SourceQuery
    facet_name: str | None = None
    positive_limit: int = 100
    negative_limit: int = 100
    validation_fraction: float = 0.2
    dry_run: bool = False
    upload: bool = True  # write the rows to the backend's dataset (False: --skip-upload on Braintrust)
    notes: list[str] = field(default_factory=list)


def _parse(candidates: list[dict], explicit: str | None) -> tuple[list[FacetCall], list[dict], int]:
    calls, failures, without_ids = [], [], 0
    for raw in candidates:
        span = span_from_raw(raw)
        if span is None:
            without_ids += 1
            continue
        try:
            calls.extend(parse_span(span, explicit))
        except ValueError as exc:
            failures.append({"id": span.id, "reason": str(exc)})
    return calls, failures, without_ids


def _one_prompt_per_name(calls: list[FacetCall], facet_name: str) -> None:
    """--facet-name names every call; calls of different facet prompts under one name would mix facets."""
    hashes = Counter(prompt_sha256(c.prompt_text) for c in calls)
    if len(hashes) > 1:
        shown = ", ".join(f"{sha[:12]} ({n} calls)" for sha, n in hashes.most_common(4))
        raise InputError(
            f"--facet-name {facet_name!r} would name calls of {len(hashes)} different facet prompts: {shown}",
            hint="drop --facet-name (each call is named by its own prompt), or narrow the spans to one facet "
            "with --extra-where-sql or --root-span-id",
        )


def _prompts(calls: list[FacetCall]) -> list[FacetPrompt]:
    """One prompt per facet: the newest call's prompt (calls arrive newest first)."""
    chosen: dict[str, FacetCall] = {}
    for call in calls:
        chosen.setdefault(call.facet_name.lower(), call)
    return [
        FacetPrompt(
            facet_name=c.facet_name,
            prompt_sha256=prompt_sha256(c.prompt_text),
            messages=c.template_messages,
            suffix_messages=[c.suffix_messages],
        )
        for c in chosen.values()
    ]


def _counts_by_facet(calls: list[FacetCall], attr: str) -> dict:
    per: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for c in calls:
        per[c.facet_name][getattr(c, attr) or "unknown"] += 1
    overall: Counter[str] = Counter()
    for counter in per.values():
        overall.update(counter)
    return {"overall": dict(overall), "per_facet": {k: dict(v) for k, v in sorted(per.items())}}


def check_request(req: CreateRequest, settings: Settings) -> None:
    """What the settings' own checks cannot see: values that are each fine but select nothing."""
    if settings.ground_truth_concurrency < 1:
        raise InputError(
            f"--concurrency must be at least 1 (got {settings.ground_truth_concurrency})",
            hint="the default is 128 labelling requests in flight",
        )
    if req.positive_limit == 0 and req.negative_limit == 0:
        raise InputError(
            "--positive-limit and --negative-limit are both 0: nothing would be labelled",
            hint="the defaults are 100 each; set at least one above 0",
        )
    if req.query.limit == 0:
        raise InputError(
            "--limit 0 reads no source span", hint="drop --limit (default 5 x (positive + negative))"
        )


def create_dataset(
    req: CreateRequest, settings: Settings, progress: Progress | None = None
) -> DatasetCreateSummary:
    """Query, parse, read final facets, sample, label, split, report, store: one step each below."""
    check_request(req, settings)
    progress = progress or SilentProgress()
    endpoint = resolve_labeller(settings)
    run_dir = artifacts.new_run_dir(settings.output_root)
    summary = _start_summary(req, endpoint, run_dir)
    candidates = _query_candidates(req.source, req.query, run_dir, progress)
    calls, parse_failures = _parse_candidates(req, candidates, summary)
    final_rows = _read_final_facets(req.source, calls, run_dir, progress)
    summary.weak_bucket_sources = assign_weak_buckets(calls, newest_final_facets(final_rows))
    artifacts.write_jsonl(run_dir / "parsed_calls.jsonl", calls)
    selected = _sample(req, calls, run_dir, summary)
    summary.counts = DatasetCounts(
        candidates=len(candidates),
        final_facets=len(final_rows),
        parsed_calls=len(calls),
        parse_failures=len(parse_failures),
        selected_calls=len(selected),
    )
    _report_source_problems(summary, parse_failures)
    if req.dry_run:
        return _finish_dry_run(summary, selected, run_dir)
    if not selected:
        raise SourceError(
            "no facet calls were selected for labelling", hint="check --facet-name and the limits"
        )
    rows, failures = _label_and_build_rows(req, settings, selected, endpoint, summary, progress)
    _report_rows(req, summary, rows, failures, endpoint.simulated)
    if not req.upload:
        summary.warnings.append(
            f"--skip-upload: nothing was written to {req.backend.name}; the rows are only in "
            f"{run_dir / 'dataset_rows.jsonl'} (upload them with `{_upload_command(run_dir, settings)}`)"
        )
    artifacts.write_json(run_dir / "summary.json", summary)  # before uploading: `dataset upload` reads it
    if req.upload:
        _upload(req, summary, rows, _upload_command(run_dir, settings))
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
    return summary


def _query_candidates(
    source: SpanSource, query: SourceQuery, run_dir: Path, progress: Progress
) -> list[dict]:
    """The candidate spans (candidates.jsonl) and the SQL that found them (query.sql)."""
    progress.stage(f"querying {source.info.description or source.info.project_name}")
    artifacts.write_text(run_dir / "query.sql", source.candidate_sql(query) + "\n")
    try:
        candidates = list(source.candidates(query))
    finally:  # a paged source (Braintrust) reports every query it actually sent
        _rewrite_sent_sql(run_dir / "query.sql", source.sent_sql())
    artifacts.write_jsonl(run_dir / "candidates.jsonl", candidates)
    if not candidates and query.root_span_ids:
        ids = query.root_span_ids
        raise SourceError(
            f"none of the {len(ids)} root span ids given matched a facet span of the source "
            f"(first: {ids[0]!r})",
            hint="check the ids (root span ids of traces holding facet LLM spans of --source-model); "
            "with root span ids the time window is not applied; the query is in "
            + str(run_dir / "query.sql"),
        )
    bad_created, example = source.bad_created()
    if not candidates and bad_created:
        raise SourceError(
            f"no facet spans matched the source query, and {bad_created} source spans have a `created`"
            f" that is not a timestamp (e.g. {example!r}): no time window selects them",
            hint="fix `created` in the export (ISO 8601, e.g. 2025-03-03T08:01:40Z), or select the traces"
            " by id with --root-span-id-file (no time window applies)",
        )
    if not candidates:
        raise SourceError(
            "no facet spans matched the source query",
            hint="widen --created-after-sql, check --source-model, or drop --extra-where-sql; the query is in "
            + str(run_dir / "query.sql"),
        )
    return candidates


def _parse_candidates(
    req: CreateRequest, candidates: list[dict], summary: DatasetCreateSummary
) -> tuple[list[FacetCall], list[dict]]:
    calls, parse_failures, without_ids = _parse(candidates, req.facet_name)
    if req.facet_name:
        _one_prompt_per_name(calls, req.facet_name)
    summary.rows_without_ids = req.source.rows_without_ids + without_ids
    summary.skipped_source_lines = req.source.skipped_lines
    summary.skipped_source_line_reasons = dict(req.source.skipped_line_reasons)
    bad_created, example = req.source.bad_created()
    if bad_created and not req.query.root_span_ids:
        summary.warnings.append(
            f"{bad_created} source span{'' if bad_created == 1 else 's'} {'has' if bad_created == 1 else 'have'}"
            f" a `created` that is not a timestamp (e.g. {example!r}):"
            " no time window selects them"
        )
    return calls, parse_failures


def _read_final_facets(
    source: SpanSource, calls: list[FacetCall], run_dir: Path, progress: Progress
) -> list[dict]:
    """The traces' final facet values (final_facets.jsonl), which give the weak buckets."""
    root_ids = list(dict.fromkeys(c.root_span_id for c in calls))
    progress.stage(f"reading final facet values for {len(root_ids)} traces")
    artifacts.write_text(run_dir / "facets_query.sql", source.final_facets_sql(root_ids) + "\n")
    try:
        final_rows = source.final_facets(root_ids) if root_ids else []
    finally:
        _rewrite_sent_sql(run_dir / "facets_query.sql", source.sent_facets_sql())
    artifacts.write_jsonl(run_dir / "final_facets.jsonl", final_rows)
    return final_rows


def _sample(
    req: CreateRequest, calls: list[FacetCall], run_dir: Path, summary: DatasetCreateSummary
) -> list[FacetCall]:
    """The calls to label (limits per facet and bucket) and their prompts (facet_prompt.yaml)."""
    apply_limits = req.query.root_span_ids is None
    selected = sample_calls(calls, req.positive_limit, req.negative_limit, apply_limits)
    prompts = _prompts(selected or calls)
    write_new_prompt_file(run_dir / "facet_prompt.yaml", prompts)
    summary.prompt_hashes = {p.facet_name: p.prompt_sha256 for p in prompts}
    summary.weak_bucket_counts = _counts_by_facet(calls, "weak_bucket")
    return selected


def _report_source_problems(summary: DatasetCreateSummary, parse_failures: list[dict]) -> None:
    summary.failed_rows = [
        FailedRow(id=f["id"], facet_name="", reason=f"parse: {f['reason']}") for f in parse_failures
    ]
    fallback = summary.weak_bucket_sources.get("production_output", 0)
    if fallback:
        summary.warnings.append(
            f"{fallback} calls had no final facet value: their weak bucket came from the production output"
        )
    screened = summary.skipped_source_line_reasons
    for reason, count in screened.items():
        summary.warnings.append(f"{_lines(count)} {reason} and skipped")
    not_json = summary.skipped_source_lines - sum(screened.values())
    if not_json:
        summary.warnings.append(f"{_lines(not_json)} not JSON and skipped")
    if summary.rows_without_ids:
        summary.warnings.append(
            f"{summary.rows_without_ids} source rows had no string id/root_span_id and were skipped"
        )
    if parse_failures:
        summary.warnings.append(f"{len(parse_failures)} spans could not be parsed (see failed_rows)")


def _lines(count: int) -> str:
    return f"{count} source line was" if count == 1 else f"{count} source lines were"


def _finish_dry_run(
    summary: DatasetCreateSummary, selected: list[FacetCall], run_dir: Path
) -> DatasetCreateSummary:
    summary.would_label = {
        k: dict(v) for k, v in _counts_by_facet(selected, "weak_bucket")["per_facet"].items()
    }
    summary.dry_run_wrote = sorted([*(p.name for p in run_dir.iterdir()), "summary.json"])
    artifacts.write_json(run_dir / "summary.json", summary)
    return summary


def _label_and_build_rows(
    req: CreateRequest,
    settings: Settings,
    selected: list[FacetCall],
    endpoint: Endpoint,
    summary: DatasetCreateSummary,
    progress: Progress,
) -> tuple[list[DatasetRow], dict[str, str]]:
    """Label (cached, each label committed as it arrives), then build the split rows
    (dataset_rows.jsonl). Returns the rows and the failed calls with why they failed."""
    run_dir = Path(summary.run_dir)
    # read before the store opens for writing: rows the dataset holds keep their split (sticky)
    existing = _existing_rows(req)
    progress.stage(f"labelling {len(selected)} calls with {endpoint.model} ({endpoint.label})")
    outcome = label_calls(
        selected,
        endpoint,
        settings.store_path,
        run_dir / "labels.jsonl",
        concurrency=settings.ground_truth_concurrency,
        max_tokens=settings.ground_truth_max_tokens,
        timeout=settings.timeout_for(endpoint.model),
        deadline=settings.call_deadline,
        progress=progress,
    )
    summary.labels_from_cache, summary.labels_paid = outcome.from_cache, outcome.paid
    if outcome.store_error:
        summary.warnings.append(outcome.store_error)
    summary.label_calls = len(selected)
    summary.labels_failed, summary.label_requests_paid = len(outcome.failures), outcome.requests_paid
    if outcome.failures and not outcome.labels:
        raise _every_label_failed(outcome.failures, endpoint, run_dir)
    rows, merged = deduplicated(
        _build_rows(req, selected, outcome.labels, endpoint, req.source, existing),
        run_dir / "duplicate_ids.jsonl",
    )
    summary.counts.duplicate_rows_merged = merged
    seed = split_seed(req.source.info.project_name, req.target_project, req.dataset)
    summary.warnings.extend(_seed_notes(req, seed, existing, rows))
    summary.failed_rows += [
        FailedRow(id=key, facet_name=key.rsplit(":", 1)[-1], reason=reason)
        for key, reason in outcome.failures.items()
    ]
    artifacts.write_jsonl(run_dir / "dataset_rows.jsonl", rows)
    summary.counts.dataset_rows = len(rows)
    return rows, outcome.failures


def _report_rows(
    req: CreateRequest,
    summary: DatasetCreateSummary,
    rows: list[DatasetRow],
    failures: dict[str, str],
    simulated: bool,
) -> None:
    """Bucket and split counts, the balance report, and the warnings about the labels."""
    _fill_bucket_and_split_counts(summary, rows)
    report = balance_report(rows, req.dataset, req.target_project, req.backend.name)
    report.warnings = balance_warnings(report, rows)
    summary.balance = report
    summary.warnings.extend(report.warnings)
    if failures:
        summary.warnings.append(
            f"{len(failures)} calls failed labelling (see failed_rows); re-run to retry them"
        )
    if simulated:
        summary.warnings.insert(
            0,
            "labels come from the SIMULATED model (no model key configured, or simulated://): not ground truth",
        )


def _every_label_failed(failures: dict[str, str], endpoint: Endpoint, run_dir: Path) -> ModelError:
    reason, count = Counter(failures.values()).most_common(1)[0]
    others = f" ({len(failures) - count} others failed otherwise)" if count < len(failures) else ""
    return ModelError(
        f"every label failed ({len(failures)} calls to {endpoint.model} at {endpoint.label}): {reason}{others}",
        hint="check the labeller's key and base URL (FACET_OPTIMIZER_GROUND_TRUTH_API_KEY, "
        f"--ground-truth-api-base); nothing was written to the dataset; details in {run_dir}",
    )


def _existing_rows(req: CreateRequest) -> list[DatasetRow]:
    """The dataset's rows where this run writes (none on --skip-upload: the target is not contacted)."""
    if not req.upload:
        return []
    try:
        return req.backend.dataset_rows(req.target_project, req.dataset)
    except NotFoundError:
        return []


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
            summary.counts.rows_from_earlier_runs = max(0, uploaded.dataset_rows - len({r.id for r in rows}))
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


def deduplicated(rows: list[DatasetRow], conflicts_path: Path) -> tuple[list[DatasetRow], int]:
    """Rows with one row per id, and how many exact repeats (same id, same label) were dropped.
    The same id with different labels is an InputError listing the ids (kept in `conflicts_path`):
    an upsert would silently keep whichever came last."""
    first: dict[str, DatasetRow] = {}
    conflicts: dict[str, list[str]] = {}
    for row in rows:
        kept = first.setdefault(row.id, row)
        if kept is not row and kept.expected != row.expected:
            conflicts.setdefault(row.id, [str(kept.expected)]).append(str(row.expected))
    if conflicts:
        artifacts.write_jsonl(conflicts_path, [{"id": k, "labels": v} for k, v in conflicts.items()])
        shown = ", ".join(list(conflicts)[:10]) + (" ..." if len(conflicts) > 10 else "")
        raise InputError(
            f"{len(conflicts)} row id(s) appear more than once with different labels: {shown}",
            hint=f"the labels are cached (a re-run pays nothing for them); the conflicting rows are in "
            f"{conflicts_path}; check the source for repeated span ids",
        )
    return list(first.values()), len(rows) - len(first)


def _rewrite_sent_sql(path: Path, text: str) -> None:
    if text:
        artifacts.write_text(path, text + "\n")


def _build_rows(
    req: CreateRequest,
    selected: list[FacetCall],
    labels: dict[str, str],
    endpoint: Endpoint,
    source: SpanSource,
    existing: list[DatasetRow],
) -> list[DatasetRow]:
    """Rows with their split: rows the dataset already holds keep theirs (sticky splits)."""
    info = source.info
    seed = split_seed(info.project_name, req.target_project, req.dataset)
    model = f"{SIMULATED_PREFIX}{endpoint.model}" if endpoint.simulated else endpoint.model
    ctx = RowContext(
        source_project=info.project_name,
        source_project_id=info.project_id,
        source_org=info.org,
        app_url=info.app_url,
        ground_truth_model=model,
        generated_at=datetime.now(UTC).isoformat(),
        split_seed=seed,
    )
    labelled = [c for c in selected if call_key(c) in labels]
    items = [(call_key(c), c.facet_name, bucket_of(labels[call_key(c)])) for c in labelled]
    held = [(r.id, r.facet_name, bucket_of(r.expected), r.split) for r in existing if r.split]
    splits = assign_splits(items, seed, req.validation_fraction, held)
    rows = [build_row(c, labels[call_key(c)], ctx, splits[call_key(c)]) for c in labelled]
    placed_by = {r.id: _seed_of(req, r) for r in existing if r.split}
    for row in rows:  # a kept split keeps the seed that placed it
        if placed_by.get(row.id):
            row.metadata["split_seed"] = placed_by[row.id]
    return rows


def _seed_of(req: CreateRequest, row: DatasetRow) -> str | None:
    """The seed a stored row was split with (rows written before `split_seed` was recorded: the seed
    their source project gave)."""
    recorded, source = row.metadata.get("split_seed"), row.metadata.get("source_project")
    if isinstance(recorded, str):
        return recorded
    return split_seed(source, req.target_project, req.dataset) if isinstance(source, str) else None


def _seed_notes(
    req: CreateRequest, seed: str, existing: list[DatasetRow], rows: list[DatasetRow]
) -> list[str]:
    """Say so when this run's split seed differs from the one the dataset's rows were split with."""
    theirs = Counter(s for s in (_seed_of(req, row) for row in existing) if s and s != seed)
    if not theirs or not rows:
        return []
    known = {r.id for r in existing}
    kept = sum(1 for row in rows if row.id in known)
    described = ", ".join(f"{s!r} ({n} rows)" for s, n in sorted(theirs.items()))
    return [
        f"this run's split seed {seed!r} differs from the dataset's ({described}): the {kept} rows "
        "of this run already in the dataset kept their split; only new rows were placed by this seed"
    ]


def _fill_bucket_and_split_counts(summary: DatasetCreateSummary, rows: list[DatasetRow]) -> None:
    buckets: defaultdict[str, Counter[str]] = defaultdict(Counter)
    splits: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        buckets[row.facet_name][bucket_of(row.expected)] += 1
        splits[row.facet_name][row.split or "train"] += 1
    summary.final_bucket_counts = {k: dict(v) for k, v in sorted(buckets.items())}
    summary.split_counts = {k: dict(v) for k, v in sorted(splits.items())}


def load_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
