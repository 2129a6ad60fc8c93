"""Rows whose model call failed, in `facetopt compare`: a run in which every row errored is refused
(it measured nothing), and a pair with an errored row on either side is left out of the paired
statistics, named and counted. Also the warning for a side whose run is not complete."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facetopt.domain.experiments import EvalRow, ExperimentRecord
from facetopt.errors import InputError

LISTED = 10  # errored row ids named per side in the warning (every one is in the report)


class ErroredRows(BaseModel):
    """Errored rows of each side (on the compared split and facet) and the pairs left out for them."""

    baseline: list[str] = Field(default_factory=list)  # row ids
    candidate: list[str] = Field(default_factory=list)
    pairs_left_out: int = 0

    def warning(self) -> str | None:
        if not self.baseline and not self.candidate:
            return None
        sides = "; ".join(
            f"{side} {len(ids)} ({_listed(ids)})"
            for side, ids in (("baseline", self.baseline), ("candidate", self.candidate))
            if ids
        )
        return (
            f"rows whose model call failed: {sides}; {self.pairs_left_out} pair(s) with an errored row "
            "on either side were left out of the comparison (see them with `facetopt inspect failures "
            "--kind any`)"
        )


def _listed(ids: list[str]) -> str:
    return ", ".join(ids[:LISTED]) + (f", and {len(ids) - LISTED} more" if len(ids) > LISTED else "")


def _where(split: str | None, facet: str | None) -> str:
    parts = [f"split {split}" if split and split != "all" else "", f"facet {facet}" if facet else ""]
    shown = " and ".join(p for p in parts if p)
    return f" on {shown}" if shown else ""


def refuse_all_errored(
    side: str, record: ExperimentRecord, rows: list[EvalRow], split: str | None, facet: str | None
) -> None:
    """InputError when every row of a side (on the compared split and facet) errored."""
    if not rows or not all(row.error for row in rows):
        return
    first = rows[0]
    raise InputError(
        f"every row of the {side} {record.experiment_name!r} ({record.experiment_id}) errored "
        f"({len(rows)} rows{_where(split, facet)}), e.g. {first.id}: {(first.error or '')[:200]}",
        hint="it measured nothing to compare: fix the facet model endpoint (--api-base, its key) and "
        "run `facetopt eval` again, then compare with the new run",
    )


def drop_errored(
    baseline_rows: list[EvalRow],
    candidate_rows: list[EvalRow],
    left: list[EvalRow],
    right: list[EvalRow],
) -> tuple[list[EvalRow], list[EvalRow], ErroredRows]:
    """The pairs without an errored row on either side, and what was left out."""
    kept = [(a, b) for a, b in zip(left, right, strict=True) if not a.error and not b.error]
    errored = ErroredRows(
        baseline=sorted(row.id for row in baseline_rows if row.error),
        candidate=sorted(row.id for row in candidate_rows if row.error),
        pairs_left_out=len(left) - len(kept),
    )
    return [a for a, _ in kept], [b for _, b in kept], errored


def incomplete_warnings(baseline: ExperimentRecord, candidate: ExperimentRecord) -> list[str]:
    """A side named by id or name whose run is not complete (latest / previous never pick one)."""
    return [
        f"the {side} {record.describe_status()}: its rows are compared as they are"
        for side, record in (("baseline", baseline), ("candidate", candidate))
        if not record.complete
    ]
