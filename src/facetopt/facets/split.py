"""Deterministic, stratified train/validation split, identical to the original facet-optimizer scripts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
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


def split_order_key(seed: str, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def assign_splits(items: Iterable[tuple[str, str, str]], seed: str, fraction: float) -> dict[str, str]:
    """{row_id: "train" | "validation"} for (row_id, facet_name, final_bucket) items.

    Rows are grouped by (facet name compared case-insensitively, final bucket); in each group the
    rows ordered first by sha256 of "<seed>:<row id>" go to validation.
    """
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row_id, facet_name, bucket in items:
        groups[(facet_name.casefold(), bucket)].append(row_id)
    splits: dict[str, str] = {}
    for row_ids in groups.values():
        ordered = sorted(set(row_ids), key=lambda row_id: (split_order_key(seed, row_id), row_id))
        cut = validation_count(len(ordered), fraction)
        for position, row_id in enumerate(ordered):
            splits[row_id] = VALIDATION if position < cut else TRAIN
    return splits
