"""Before any write to a dataset (`dataset create`, `dataset upload`): a person's label stays, a row's
split stays, duplicate conversations share a split, and no trace crosses the holdout between the
project's datasets. After the write, the ledger in the local store remembers the rows
(`remember_written`), on either backend.

The rules themselves are pure (facets/data/placement.py); this module reads what they need (the target
dataset's rows, the ledger) and reports what they did."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from facetopt.clients.local.store import LedgerEntry, LocalStore, StoreBusyError
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import FacetoptError
from facetopt.facets.data.placement import Candidate, Held, holdout_overlap, place_rows
from facetopt.facets.data.split import TRAIN
from facetopt.facets.data.text import bucket_of
from facetopt.settings import Settings

BUCKET_TAGS = ("positive", "negative")
SPLIT_TAGS = ("train", "validation", "test")
SHOWN = 5


@dataclass
class Settled:
    rows: list[DatasetRow]
    existing: int = 0  # rows the dataset already held
    kept_reviewed: int = 0  # rows written with a person's label (kept, or carried by the row)
    restored: list[str] = field(default_factory=list)  # reviewed rows deleted by hand, written back
    by_duplicate: dict[str, str] = field(default_factory=dict)
    by_trace: dict[str, str] = field(default_factory=dict)
    overlap: dict[str, list[str]] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)  # rows no split can take without a leak
    warnings: list[str] = field(default_factory=list)


def read_ledger(settings: Settings, backend: str, project: str) -> tuple[list[LedgerEntry], list[str]]:
    """The rows facetopt wrote to the project's datasets on this backend (none without a store)."""
    if not settings.store_path.exists():
        return [], []
    try:
        with LocalStore(settings.store_path, read_only=True) as store:
            return store.ledger(backend, project), []
    except StoreBusyError as error:
        return [], [f"the split rules across datasets were not applied: {error.message}"]


def remember_written(
    settings: Settings, backend: str, project: str, dataset: str, rows: Sequence[DatasetRow]
) -> str | None:
    """Record written rows in the ledger; a warning (the write itself succeeded) when the store is busy."""
    try:
        with LocalStore(settings.store_path) as store:
            store.remember_rows(backend, project, dataset, rows)
    except FacetoptError as error:
        return f"the rows were written but not recorded in the local store's ledger: {error.message}"
    return None


def _review(row: DatasetRow) -> dict | None:
    review = row.metadata.get("review")
    return review if isinstance(review, dict) and review.get("decided_by") == "human" else None


def with_label(row: DatasetRow, expected: str, review: dict, history: object = None) -> DatasetRow:
    metadata = dict(row.metadata)
    metadata["review"] = review
    if history:
        metadata["review_history"] = history
    bucket = bucket_of(expected)
    tags = [bucket if tag in BUCKET_TAGS else tag for tag in row.tags]
    return row.model_copy(update={"expected": expected, "metadata": metadata, "tags": tags})


def with_split(row: DatasetRow, split: str, seed: object = None) -> DatasetRow:
    metadata = dict(row.metadata)
    metadata["split"] = split
    if isinstance(seed, str) and seed:
        metadata["split_seed"] = seed
    tags = [split if tag in SPLIT_TAGS else tag for tag in row.tags]
    return row.model_copy(update={"metadata": metadata, "tags": tags})


def _text(row: DatasetRow) -> str:
    return str(row.input.get("preprocessed_text") or "")


def settle_rows(
    rows: Sequence[DatasetRow], target: Sequence[DatasetRow], ledger: Sequence[LedgerEntry], dataset: str
) -> Settled:
    """The rows as they may be written to `dataset`, whose current rows are `target`."""
    current = {r.id: r for r in target}
    mine = {e.id: e for e in ledger if e.dataset == dataset}
    out: list[DatasetRow] = []
    restored: list[str] = []
    for row in rows:
        held = current.get(row.id)
        review = _review(held) if held is not None else None
        if review is not None and review != _review(row):
            row = with_label(row, held.expected, review, held.metadata.get("review_history"))  # type: ignore[union-attr]
        elif held is None and row.id in mine and mine[row.id].review and _review(row) is None:
            entry = mine[row.id]
            row = with_label(row, str(entry.expected), dict(entry.review or {}))
            restored.append(row.id)
        out.append(row)

    held_rows = [
        Held(
            r.id, r.facet_name, _text(r), r.split or TRAIN, str(r.metadata.get("split_seed") or ""),
            root_span_id=r.metadata.get("source_root_span_id"),
        )
        for r in target
    ]  # fmt: skip
    held_rows += [
        Held(e.id, e.facet_name, None, e.split, e.split_seed or "", e.conversation_key, e.root_span_id)
        for e in mine.values()
        if e.id not in current and e.split
    ]
    seeds = {h.row_id: h.seed for h in held_rows}
    traces: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for e in ledger:
        if e.dataset != dataset and e.root_span_id and e.split:
            traces[e.root_span_id][e.dataset].add(e.split)
    candidates = [
        Candidate(
            r.id,
            r.facet_name,
            _text(r),
            r.metadata.get("source_root_span_id"),
            r.split or TRAIN,
            str(r.metadata.get("split_seed") or ""),
        )
        for r in out
    ]
    placed = place_rows(candidates, held_rows, traces)
    out = [
        r if placed.splits[r.id] == r.split else with_split(r, placed.splits[r.id], seeds.get(r.id))
        for r in out
        if r.id not in placed.left_out
    ]
    out = [with_split(r, r.split or TRAIN, seeds[r.id]) if seeds.get(r.id) else r for r in out]
    written = {r.id: r for r in out}
    final = [written.get(r.id, r) for r in target] + [r for r in out if r.id not in current]
    overlap = holdout_overlap(
        ((r.metadata.get("source_root_span_id"), r.split or TRAIN) for r in final), traces
    )
    settled = Settled(
        rows=out,
        existing=sum(r.id in current for r in out),
        kept_reviewed=sum(_review(r) is not None for r in out),
        restored=restored,
        by_duplicate=placed.by_duplicate,
        by_trace=placed.by_trace,
        overlap=overlap,
        left_out=placed.left_out,
    )
    settled.warnings = _warnings(settled, dataset)
    return settled


def _some(ids: Sequence[str]) -> str:
    return ", ".join(ids[:SHOWN]) + (" ..." if len(ids) > SHOWN else "")


def _warnings(settled: Settled, dataset: str) -> list[str]:
    warnings = []
    if settled.restored:
        warnings.append(
            f"{len(settled.restored)} reviewed row(s) were no longer in dataset {dataset!r} (deleted by hand?) "
            f"and were written back with the label a person decided: {_some(settled.restored)}"
        )
    if settled.by_trace:
        first = next(iter(settled.by_trace.values()))
        warnings.append(
            f"{len(settled.by_trace)} new row(s) were placed by the trace holdout rule (the rows of a trace "
            "are all in test or all out of it, in this dataset and across the project's datasets), e.g. "
            f"{first}"
        )
    if settled.left_out:
        first_id, why = next(iter(settled.left_out.items()))
        warnings.append(
            f"{len(settled.left_out)} new row(s) were left out of dataset {dataset!r}: a repeated "
            f"conversation that would sit in two splits whatever split it took, e.g. {first_id}: {why}"
        )
    if settled.overlap:
        others = sorted({d for names in settled.overlap.values() for d in names})
        warnings.append(
            f"{len(settled.overlap)} trace(s) of dataset {dataset!r} are already in test on one side and in "
            f"train or validation on the other of {', '.join(repr(d) for d in others)} "
            f"(e.g. {_some(sorted(settled.overlap))}): written before this rule; nothing was moved"
        )
    return warnings
