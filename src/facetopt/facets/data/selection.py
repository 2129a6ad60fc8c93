"""Which dataset rows an eval runs on: `--split`, `--facet`, `--row-id`, then `--max-rows`.

Each filter that leaves no row is an error naming what there was instead, so a typo is never
a silent empty run.
"""

from __future__ import annotations

from collections.abc import Callable

from facetopt.domain.dataset import DatasetRow
from facetopt.errors import InputError

SPLITS = ("train", "validation", "test")
TEST_SPLIT = "test"


def parse_splits(value: str | None) -> list[str]:
    """`train`, `validation`, `test`, a comma list of them, or nothing / `all` for every split but test.

    The test split is a holdout: it is read only when named."""
    if not value or value.strip().lower() == "all":
        return []
    splits = [s.strip().lower() for s in value.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise InputError(
            f"unknown split {', '.join(unknown)}",
            hint="use --split train, --split validation or --split test (the holdout)",
        )
    return list(dict.fromkeys(splits))


def reads_test(splits: list[str]) -> bool:
    return TEST_SPLIT in splits


def _counts(values: list[str | None]) -> str:
    found: dict[str, int] = {}
    for value in values:
        found[value or "none"] = found.get(value or "none", 0) + 1
    return ", ".join(f"{name} {n}" for name, n in sorted(found.items()))


def select_rows(
    rows: list[DatasetRow],
    *,
    splits: list[str],
    facets: list[str],
    row_ids: list[str],
    max_rows: int | None,
    warn: Callable[[str], None] = lambda _: None,
) -> list[DatasetRow]:
    """Filters in order split, facet, row id, then the first --max-rows rows in row-id order.
    No split asked means every split but test."""
    selected = sorted(rows, key=lambda r: r.id)
    if not splits:
        kept = [r for r in selected if (r.split or "").lower() != TEST_SPLIT]
        if selected and not kept:
            raise InputError(
                "every row of the dataset is in the test split, which is read only when named",
                hint="pass --split test for the final check, or re-create the dataset with a smaller --test-fraction",
            )
        selected = kept
    if splits:
        kept = [r for r in selected if (r.split or "").lower() in splits]
        if not kept:
            raise InputError(
                f"--split {','.join(splits)} left no rows "
                f"(the dataset's splits: {_counts([r.split for r in selected])})",
                hint="choose a split the dataset has, or leave out --split",
            )
        selected = kept
    if facets:
        wanted = {f.strip().casefold() for f in facets}
        kept = [r for r in selected if r.facet_name.casefold() in wanted]
        if not kept:
            where = " after --split" if splits else ""
            raise InputError(
                f"--facet {', '.join(facets)} left no rows{where} "
                f"(facets there: {_counts([r.facet_name for r in selected])})",
                hint="facet names are compared case-insensitively; pick one of those listed",
            )
        selected = kept
    if row_ids:
        wanted_ids = list(dict.fromkeys(row_ids))
        present = {r.id for r in selected}
        kept = [r for r in selected if r.id in set(wanted_ids)]
        if not kept:
            before = " after --split/--facet" if splits or facets else ""
            raise InputError(
                f"--row-id left no rows: none of {', '.join(wanted_ids[:5])} "
                f"is among the {len(selected)} rows{before}",
                hint="row ids look like `<source row id>:<facet>`; see `facetopt inspect failures`",
            )
        unknown = [i for i in wanted_ids if i not in present]
        if unknown:
            warn(f"{len(unknown)} --row-id value(s) matched no row: {', '.join(unknown[:5])}")
        selected = kept
    if max_rows is not None:
        if max_rows < 1:
            raise InputError(
                "--max-rows must be at least 1", hint="leave it out to evaluate every selected row"
            )
        selected = selected[:max_rows]
    return selected
