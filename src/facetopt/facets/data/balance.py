"""Per-facet balance of a ground-truth dataset and the warnings a user should see before trusting it."""

from __future__ import annotations

from collections.abc import Mapping

from facetopt.domain.dataset import BalanceReport, DatasetRow, FacetBalance
from facetopt.facets.data.placement import duplicate_groups
from facetopt.facets.data.text import bucket_of, pattern_for

MIN_ROWS_PER_FACET = 20
MAX_NEGATIVE_SHARE = 0.8


def balance_report(
    rows: list[DatasetRow],
    dataset: str,
    target_project: str,
    backend: str,
    patterns: Mapping[str, str] | None = None,
) -> BalanceReport:
    """Rows, final buckets (from `expected`) and splits per facet (names compared case-insensitively)."""
    per_facet: dict[str, FacetBalance] = {}
    total = FacetBalance(facet_name="total")
    for row in rows:
        key = row.facet_name.casefold()
        balance = per_facet.setdefault(key, FacetBalance(facet_name=row.facet_name))
        bucket = bucket_of(row.expected, pattern_for(patterns, row.facet_name))
        for counts in (balance, total):
            counts.rows += 1
            if bucket == "positive":
                counts.positive += 1
            else:
                counts.negative += 1
            if row.split == "train":
                counts.train += 1
            elif row.split == "validation":
                counts.validation += 1
            elif row.split == "test":
                counts.test += 1
    texts = [(r.facet_name, str(r.input.get("preprocessed_text") or ""), r.split) for r in rows]
    for key, (groups, members, straddling) in duplicate_groups(texts).items():
        for counts in (per_facet[key], total):
            counts.duplicate_groups += groups
            counts.duplicate_rows += members
            counts.straddling_groups += straddling
    report = BalanceReport(
        dataset=dataset,
        target_project=target_project,
        backend=backend,
        facets=[per_facet[key] for key in sorted(per_facet)],
        total=total,
    )
    report.warnings = balance_warnings(report, rows)
    return report


def balance_warnings(report: BalanceReport, rows: list[DatasetRow]) -> list[str]:
    warnings: list[str] = []
    if report.total.rows == 0:
        return ["the dataset has no rows"]
    for facet in report.facets:
        if facet.rows < MIN_ROWS_PER_FACET:
            warnings.append(
                f"facet {facet.facet_name!r} has only {facet.rows} rows (fewer than {MIN_ROWS_PER_FACET}): "
                "its metrics will be noisy"
            )
        if facet.positive == 0:
            warnings.append(f"facet {facet.facet_name!r} has no positive rows: recall cannot be measured")
        if facet.negative == 0:
            warnings.append(
                f"facet {facet.facet_name!r} has no negative rows: specificity cannot be measured"
            )
    negative_share = report.total.negative / report.total.rows
    if negative_share > MAX_NEGATIVE_SHARE:
        warnings.append(
            f"{negative_share:.0%} of the dataset is negative (more than {MAX_NEGATIVE_SHARE:.0%}): "
            "raise --positive-limit or widen the time window"
        )
    for facet in report.facets:
        if facet.straddling_groups:
            warnings.append(
                f"facet {facet.facet_name!r}: {facet.straddling_groups} of {facet.duplicate_groups} duplicate "
                "conversations sit in more than one split (written before splits grouped duplicates): "
                "an edit that fixes a train row also fixes its held-out twin"
            )
    warnings.extend(_copied_label_warnings(report, rows))
    return warnings


def _copied_label_warnings(report: BalanceReport, rows: list[DatasetRow]) -> list[str]:
    """Labels equal to the production output for more than half a facet's rows: the labeller may echo it."""
    same: dict[str, int] = {}
    for row in rows:
        production = row.metadata.get("production_output")
        if production is None:
            continue
        if str(production).strip().casefold() == row.expected.strip().casefold():
            key = row.facet_name.casefold()
            same[key] = same.get(key, 0) + 1
    warnings = []
    for facet in report.facets:
        count = same.get(facet.facet_name.casefold(), 0)
        if count * 2 > facet.rows:
            warnings.append(
                f"facet {facet.facet_name!r}: {count} of {facet.rows} labels equal the production output; "
                "the ground truth may only repeat the production model"
            )
    return warnings
