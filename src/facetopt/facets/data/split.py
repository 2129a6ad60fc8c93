"""Deterministic, stratified train/validation/test split, identical to the original facet-optimizer
scripts when every row is new and the test fraction is 0, and sticky for rows the dataset already holds."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

TRAIN = "train"
VALIDATION = "validation"
TEST = "test"


def split_seed(source_project: str, target_project: str, dataset: str) -> str:
    return f"{source_project}:{target_project}:{dataset}"


def validation_count(n: int, fraction: float) -> int:
    """Validation rows in a group of n: round(n x fraction) (half to even), at least 1 and at most n - 1."""
    if n <= 1 or fraction <= 0:
        return 0
    return max(1, min(n - 1, round(n * fraction)))


def count_test_rows(n: int, validation_fraction: float, test_fraction: float) -> int:
    """Test rows in a group of n: round(n x test fraction), at least 1, and never so many that the group
    is left without a train row. Validation is served first: in a small group test gets what is left."""
    if n <= 1 or test_fraction <= 0:
        return 0
    room = n - 1 - validation_count(n, validation_fraction)
    return max(0, min(room, max(1, round(n * test_fraction))))


def split_targets(n: int, fraction: float, test_fraction: float = 0.0) -> list[tuple[str, int]]:
    """How many rows of a group of n each held-out split should hold, in the order new rows fill them
    (the rest are train): validation first, then test."""
    return [
        (VALIDATION, validation_count(n, fraction)),
        (TEST, count_test_rows(n, fraction, test_fraction)),
    ]


def _units(ordered: list[str], together: Mapping[str, str]) -> list[list[str]]:
    """The rows in order, rows sharing a key gathered at the place of the first of them."""
    units: list[list[str]] = []
    by_key: dict[str, list[str]] = {}
    for row_id in ordered:
        key = together.get(row_id)
        if key is None:
            units.append([row_id])
        elif key in by_key:
            by_key[key].append(row_id)
        else:
            by_key[key] = [row_id]
            units.append(by_key[key])
    return units


def split_order_key(seed: str, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def assign_splits(
    items: Iterable[tuple[str, str, str]],
    seed: str,
    fraction: float,
    existing: Iterable[tuple[str, str, str, str]] = (),
    test_fraction: float = 0.0,
    together: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """{row_id: split} for (row_id, facet_name, final_bucket) items.

    `existing` holds the dataset's rows as (row_id, facet_name, final_bucket, split). Rows are grouped
    by (facet name compared case-insensitively, final bucket) over the dataset as it will be, old rows
    and new. A row that already has a split keeps it; the new rows, ordered by sha256 of
    "<seed>:<row id>", fill validation until the group holds its target, then test, and the rest go to
    train. With no existing rows and test fraction 0 this is the original scripts' assignment.

    `together` maps row ids to a key (the conversation, facets.placement.conversation_key): new rows
    of a group sharing a key go, as one unit at the place of their first row in the seeded order,
    to the split that row would get, and count against its target with every member (so duplicates
    do not pull the fractions off). Rows without a shared key are placed exactly as before.
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
        targets = split_targets(len(row_ids), fraction, test_fraction)
        for unit in _units(new, together or {}):
            # the first held-out split still short of its target, else train (in the order rows fill)
            split = next((name for name, target in targets if held[name] < target), TRAIN)
            for row_id in unit:
                splits[row_id] = split
            held[split] += len(unit)
        for row_id in row_ids:
            if row_id in kept:
                splits[row_id] = kept[row_id]
    return {row_id: splits[row_id] for row_id in dict.fromkeys(wanted)}
