"""Deterministic, stratified train/validation split, identical to the original facet-optimizer scripts
when every row is new, and sticky for rows the dataset already holds."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable

TRAIN = "train"
VALIDATION = "validation"


def split_seed(source_project: str, target_project: str, dataset: str) -> str:
    return f"{source_project}:{target_project}:{dataset}"


def validation_count(n: int, fraction: float) -> int:
    """Validation rows in a group of n: round(n x fraction) (half to even), at least 1 and at most n - 1."""
    if n <= 1 or fraction <= 0:
        return 0
    return max(1, min(n - 1, round(n * fraction)))


def split_targets(n: int, fraction: float) -> list[tuple[str, int]]:
    """How many rows of a group of n each held-out split should hold, in the order new rows fill them
    (the rest are train). A test split slots in here, after validation."""
    return [(VALIDATION, validation_count(n, fraction))]


def split_order_key(seed: str, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def assign_splits(
    items: Iterable[tuple[str, str, str]],
    seed: str,
    fraction: float,
    existing: Iterable[tuple[str, str, str, str]] = (),
) -> dict[str, str]:
    """{row_id: split} for (row_id, facet_name, final_bucket) items.

    `existing` holds the dataset's rows as (row_id, facet_name, final_bucket, split). Rows are grouped
    by (facet name compared case-insensitively, final bucket) over the dataset as it will be, old rows
    and new. A row that already has a split keeps it; the new rows, ordered by sha256 of
    "<seed>:<row id>", fill validation until the group holds round(n x fraction) (clamped), and the rest
    go to train. With no existing rows this is the original scripts' assignment.
    """
    kept: dict[str, str] = {}
    members: dict[str, tuple[str, str]] = {}
    for row_id, facet_name, bucket, split in existing:
        kept[row_id] = split
        members[row_id] = (facet_name.casefold(), bucket)
    wanted: list[str] = []
    for row_id, facet_name, bucket in items:
        members[row_id] = (facet_name.casefold(), bucket)  # this run's label decides the group
        wanted.append(row_id)

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row_id, group in members.items():
        groups[group].append(row_id)
    splits: dict[str, str] = {}
    for row_ids in groups.values():
        held = Counter(kept[row_id] for row_id in row_ids if row_id in kept)
        new = sorted((r for r in row_ids if r not in kept), key=lambda r: (split_order_key(seed, r), r))
        position = 0
        for split, target in split_targets(len(row_ids), fraction):
            take = max(0, target - held[split])
            for row_id in new[position : position + take]:
                splits[row_id] = split
            position += take
        for row_id in new[position:]:
            splits[row_id] = TRAIN
        for row_id in row_ids:
            if row_id in kept:
                splits[row_id] = kept[row_id]
    return {row_id: splits[row_id] for row_id in dict.fromkeys(wanted)}
