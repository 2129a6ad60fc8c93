"""The row steps of `dataset create`: label the selected calls (cached, committed as they arrive),
build one row per labelled call with its split (rows the dataset holds keep theirs), merge repeated
ids, and report bucket and split counts, the balance and the labels' warnings."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.clients import artifacts
from facetopt.clients.llm.client import Endpoint
from facetopt.clients.local.store import LedgerEntry, StoreHold
from facetopt.domain.dataset import DatasetCreateSummary, DatasetRow, FailedRow
from facetopt.domain.spans import FacetCall
from facetopt.errors import InputError, ModelError, NotFoundError
from facetopt.facets.data.balance import balance_report, balance_warnings
from facetopt.facets.data.placement import conversation_key
from facetopt.facets.data.rows import RowContext, build_row
from facetopt.facets.data.split import assign_splits, split_seed
from facetopt.facets.data.text import bucket_of
from facetopt.services.backends.sources import SpanSource
from facetopt.services.cost import UsageMeter, max_cost_error, max_cost_warning
from facetopt.services.dataset.create.request import CreateRequest
from facetopt.services.dataset.labelling import LabelOutcome, call_key, label_calls
from facetopt.services.dataset.placement import read_ledger, settle_rows
from facetopt.services.progress import Progress
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.clients.llm.chat_http import ChatClient

SIMULATED_PREFIX = "simulated:"


def read_targets(
    req: CreateRequest, settings: Settings, summary: DatasetCreateSummary
) -> tuple[list[DatasetRow], list[LedgerEntry]]:
    """Read before the store opens for writing: the target dataset's rows (they keep their split)
    and the ledger of the rows written to the project's datasets."""
    existing = _existing_rows(req)
    ledger, ledger_notes = read_ledger(settings, req.backend.name, req.target_project)
    summary.warnings.extend(ledger_notes)
    return existing, ledger


def label_selection(
    settings: Settings,
    batches: Iterable[list[FacetCall]],
    endpoint: Endpoint,
    run_dir: Path,
    progress: Progress,
    client: Future[ChatClient] | None = None,
    hold: StoreHold | None = None,
) -> tuple[LabelOutcome, UsageMeter]:
    """Label the calls of each batch as it comes (cached, each label committed as it arrives)."""
    meter = UsageMeter.of("labeller", endpoint.model, settings)
    outcome = label_calls(
        batches,
        endpoint,
        settings.store_path,
        run_dir / "labels.jsonl",
        concurrency=settings.ground_truth_concurrency,
        max_tokens=settings.ground_truth_max_tokens,
        timeout=settings.timeout_for(endpoint.model),
        deadline=settings.call_deadline,
        progress=progress,
        meter=meter,
        client=client,
        hold=hold,
    )
    return outcome, meter


def build_labelled_rows(
    req: CreateRequest,
    settings: Settings,
    selected: list[FacetCall],
    labelled: tuple[LabelOutcome, UsageMeter],
    endpoint: Endpoint,
    summary: DatasetCreateSummary,
    targets: tuple[list[DatasetRow], list[LedgerEntry]],
) -> tuple[list[DatasetRow], dict[str, str]]:
    """The split rows of the labelled calls (dataset_rows.jsonl), rows the dataset holds keeping
    theirs. Returns the rows and the failed calls with why they failed."""
    run_dir = Path(summary.run_dir)
    outcome, meter = labelled
    existing, ledger = targets
    summary.labels_from_cache, summary.labels_paid = outcome.from_cache, outcome.paid
    summary.usage = [meter.usage]
    if outcome.store_error:
        summary.warnings.append(outcome.store_error)
    summary.label_calls = len(selected)
    summary.labels_failed, summary.label_requests_paid = len(outcome.failures), outcome.requests_paid
    if outcome.not_sent:
        summary.warnings.append(max_cost_warning(settings.max_cost, outcome.not_sent, "labelling", meter))
    if outcome.failures and not outcome.labels:
        if outcome.not_sent == len(outcome.failures):
            raise max_cost_error(settings.max_cost, "labelling", meter.refused)
        raise _every_label_failed(outcome.failures, endpoint, run_dir)
    grouped: dict[str, str] = {}  # rows the duplicate grouping placed, and why
    rows, merged = deduplicated(
        _build_rows(req, selected, outcome.labels, endpoint, req.source, existing, grouped),
        run_dir / "duplicate_ids.jsonl",
    )
    summary.counts.duplicate_rows_merged = merged
    settled = settle_rows(rows, existing, ledger, req.dataset)
    rows = settled.rows
    counts = summary.counts
    counts.existing_rows, counts.kept_reviewed_labels = settled.existing, settled.kept_reviewed
    by_duplicate = {**grouped, **settled.by_duplicate}
    counts.placed_by_duplicates, counts.placed_by_traces = len(by_duplicate), len(settled.by_trace)
    summary.warnings.extend(settled.warnings)
    if by_duplicate or settled.by_trace:
        artifacts.write_jsonl(
            run_dir / "placed_rows.jsonl",
            [{"id": i, "rule": "duplicate", "why": w} for i, w in by_duplicate.items()]
            + [{"id": i, "rule": "trace holdout", "why": w} for i, w in settled.by_trace.items()],
        )
    seed = split_seed(req.source.info.project_name, req.target_project, req.dataset)
    summary.warnings.extend(_seed_notes(req, seed, existing, rows))
    summary.failed_rows += [
        FailedRow(id=key, facet_name=key.rsplit(":", 1)[-1], reason=reason)
        for key, reason in outcome.failures.items()
    ]
    artifacts.write_jsonl(run_dir / "dataset_rows.jsonl", rows)
    summary.counts.dataset_rows = len(rows)
    return rows, outcome.failures


def report_rows(
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


def _build_rows(
    req: CreateRequest,
    selected: list[FacetCall],
    labels: dict[str, str],
    endpoint: Endpoint,
    source: SpanSource,
    existing: list[DatasetRow],
    grouped: dict[str, str],
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
    together = {  # duplicate conversations are placed as one (an empty text duplicates nothing)
        call_key(c): conversation_key(c.facet_name, c.preprocessed_text)
        for c in labelled
        if c.preprocessed_text.strip()
    }
    splits = assign_splits(
        items,
        seed,
        req.validation_fraction,
        existing=held,
        test_fraction=req.test_fraction,
        together=together,
    )
    if len(set(together.values())) < len(together):  # some duplicates: say which rows they moved
        alone = assign_splits(
            items, seed, req.validation_fraction, existing=held, test_fraction=req.test_fraction
        )
        grouped.update(
            (row_id, f"placed with its duplicate conversation in {split} (alone: {alone[row_id]})")
            for row_id, split in splits.items()
            if alone[row_id] != split
        )
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
