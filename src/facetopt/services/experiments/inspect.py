"""`facetopt inspect ...`: metrics, failures, dataset balance, the registry and raw SQL."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field

from facetopt.domain.dataset import BalanceReport
from facetopt.domain.experiments import ComparisonRecord, EvalRow, ExperimentRecord, FacetMetrics
from facetopt.domain.sql import SqlResult
from facetopt.errors import InputError
from facetopt.facets.data.balance import balance_report
from facetopt.facets.data.selection import TEST_SPLIT
from facetopt.facets.decide.metrics import decision_outcome, metrics_by_facet, row_score
from facetopt.services.experiments.holdout import HoldoutStatus, all_statuses
from facetopt.services.experiments.registry import ALL_SPLITS, Experiments, check_facet, filter_rows

FailureKind = Literal["fp", "fn", "label", "error"]
KINDS = ("fp", "fn", "label", "any")
KIND_MEANING = {
    "fp": "false positive: expected no match, the model gave a value",
    "fn": "false negative: expected a value, the model said no match",
    "label": "sentiment label differs though the binary decision matched",
    "error": "the model call failed",
}


class MetricsReport(BaseModel):
    experiment: ExperimentRecord
    split: str | None = None
    facet: str | None = None
    reviewed: bool = False  # human-reviewed rows only
    rows: int = 0
    metrics: list[FacetMetrics] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Failure(BaseModel):
    id: str  # the dataset row id
    facet_name: str
    split: str | None = None
    kind: FailureKind
    trace_text: str | None = None  # the trace text the facet prompt wrapped and sent to the model
    expected: str | None = None  # the ground-truth label
    output: str | None = None  # the facet model's answer
    factuality: float | None = None
    permalink: str | None = None  # the source trace in the Braintrust UI
    permalink_note: str | None = None  # why there is no permalink
    error: str | None = None


class FailuresReport(BaseModel):
    experiment_id: str
    experiment: ExperimentRecord
    facet: str
    kind: str
    split: str | None = None
    rows: int = 0  # rows of the facet on the split
    failure_count: int = 0  # of those rows, the ones that failed (any kind)
    matching: int = 0  # failures of the asked --kind, before --limit
    listed: int = 0  # failures in `failures` (after --limit)
    counts: dict[str, int] = Field(default_factory=dict)  # failures per kind: fp, fn, label, error
    test_rows: int = 0  # rows of the test split among `rows` (listing them is a look at the holdout)
    failures: list[Failure] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # e.g. reading validation traces spends them


class ExperimentsReport(BaseModel):
    experiments: list[ExperimentRecord] = Field(default_factory=list)
    test_splits: list[HoldoutStatus] = Field(default_factory=list)  # who read each test split
    comparisons: list[ComparisonRecord] = Field(default_factory=list)  # recorded compares, newest first
    project: str | None = None  # the Braintrust project listed (None: the registry alone)
    limit: int | None = None
    more: bool = False  # older experiments exist beyond --limit
    notes: list[str] = Field(default_factory=list)


def split_notes(record: ExperimentRecord, all_rows: list[EvalRow], split: str | None) -> list[str]:
    """Say so when a split filter leaves nothing, naming the splits the experiment has."""
    if not split or split == ALL_SPLITS or not all_rows or filter_rows(all_rows, split):
        return []
    present = Counter(row.split or "(none)" for row in all_rows)
    listed = ", ".join(f"{name} {count}" for name, count in sorted(present.items()))
    return [
        f"experiment {record.experiment_name!r} has no rows on split {split} (its rows: {listed}); "
        "pass --split with one of those, or --split all"
    ]


def inspect_metrics(
    experiments: Experiments,
    reference: str,
    split: str | None = None,
    facet: str | None = None,
    model: str | None = None,
    reviewed: bool = False,
) -> MetricsReport:
    record = experiments.resolve(reference, split=split, model=model)
    all_rows = experiments.rows(record)
    check_facet(all_rows, facet, record)
    rows = filter_rows(all_rows, split, facet)
    notes = experiments.notes + split_notes(record, all_rows, split)
    if reviewed:
        rows = [row for row in rows if row.human_reviewed]
        notes.append(
            f"--reviewed: {len(rows)} rows whose label a person decided (`dataset review apply`)"
            + ("" if rows else "; none in this run: review labels, then re-run the eval")
        )
    metrics = metrics_by_facet(rows) if rows else []
    if facet and metrics:
        metrics = metrics[:-1]  # one facet: "overall" would repeat it
    return MetricsReport(
        experiment=record,
        split=split,
        facet=facet,
        rows=len(rows),
        metrics=metrics,
        reviewed=reviewed,
        notes=notes,
    )


def failure_kind(row: EvalRow) -> FailureKind | None:
    """Why a row failed, or None when it did not."""
    outcome = decision_outcome(row)
    if outcome in ("fp", "fn"):
        return outcome
    if row_score(row, "binary_decision_match") == 1.0 and row_score(row, "sentiment_label_correct") == 0.0:
        return "label"
    if row.error:
        return "error"
    return None


def inspect_failures(
    experiments: Experiments,
    reference: str,
    facet: str,
    kind: str = "any",
    split: str | None = "validation",
    limit: int = 20,
    model: str | None = None,
) -> FailuresReport:
    kind = kind.lower()
    if kind not in KINDS:
        raise InputError(f"unknown failure kind {kind!r}", hint="use --kind fp, fn, label or any")
    if limit < 0:
        raise InputError(f"--limit must not be negative (got {limit})", hint="0 lists every failure")
    record = experiments.resolve(reference, split=split, model=model)
    all_rows = experiments.rows(record)
    check_facet(all_rows, facet, record)
    rows = filter_rows(all_rows, split, facet)
    failures = []
    counts: Counter[str] = Counter({name: 0 for name in KIND_MEANING})
    for row in rows:
        found = failure_kind(row)
        if found is None:
            continue
        counts[found] += 1
        if kind == "any" or found == kind:
            failures.append(_failure(row, found))
    listed = failures[:limit] if limit else failures
    return FailuresReport(
        experiment_id=record.experiment_id,
        experiment=record,
        facet=facet,
        kind=kind,
        split=split,
        rows=len(rows),
        test_rows=sum((row.split or "").lower() == TEST_SPLIT for row in rows),
        failure_count=sum(counts.values()),
        matching=len(failures),
        listed=len(listed),
        counts=dict(counts),
        failures=listed,
        notes=experiments.notes + split_notes(record, filter_rows(all_rows, None, facet), split),
        warnings=validation_trace_warnings(rows, listed),
    )


VALIDATION_TRACES_WARNING = (
    "these are validation traces: every one you read spends some of validation's honesty (an edit "
    "shaped by them no longer measures out of sample); read failure traces on train (--split train) "
    "and keep to counts and metrics on validation"
)


def validation_trace_warnings(rows: list[EvalRow], listed: list[Failure]) -> list[str]:
    """Said once when the listing shows validation traces."""
    shown = any((f.split or "").casefold() == "validation" and f.trace_text for f in listed)
    return [VALIDATION_TRACES_WARNING] if shown and rows else []


_PERMALINK_PARTS = (("source_org", "org"), ("source_project_id", "project id"), ("source_row_id", "row id"))


def permalink_note(metadata: dict[str, Any]) -> str | None:
    """Why a row has no permalink (None when it has one)."""
    if metadata.get("source_trace_permalink"):
        return None
    missing = [label for key, label in _PERMALINK_PARTS if not metadata.get(key)]
    if missing:
        return (
            f"no permalink: the source span has no Braintrust {', '.join(missing)} "
            "(spans from a local export or the bundled sample carry none)"
        )
    return "no permalink: none was recorded when the dataset was built"


def _failure(row: EvalRow, kind: FailureKind) -> Failure:
    permalink = row.metadata.get("source_trace_permalink")
    text = row.input.get("preprocessed_text")
    return Failure(
        id=row.id,
        facet_name=row.facet_name,
        split=row.split,
        kind=kind,
        trace_text=str(text) if text is not None else None,
        expected=row.expected,
        output=row.output,
        factuality=row_score(row, "Factuality"),
        permalink=str(permalink) if permalink else None,
        permalink_note=permalink_note(row.metadata),
        error=row.error,
    )


def inspect_experiments(
    experiments: Experiments, backend: str | None = None, mine: bool = False, limit: int | None = None
) -> ExperimentsReport:
    """Newest first, with the recorded comparisons. On Braintrust the project's experiments (whoever
    ran them) merged with the registry; on the local backend the registry. `backend` keeps one
    backend's runs, `mine` the registry's, `limit` the newest so many (None or 0: all)."""
    if limit is not None and limit < 0:
        raise InputError(f"--limit must not be negative (got {limit})", hint="0 lists every experiment")
    limit = limit or None

    def kept(record: ExperimentRecord) -> bool:
        return (backend is None or record.backend == backend) and (not mine or record.in_registry)

    # with --mine every listed experiment is read, so that the registry's runs are enriched by it
    listing = experiments.listing(None if mine else limit)
    records = [r for r in listing.records if kept(r)]
    comparisons = experiments.store.comparisons() if experiments.store is not None else []
    return ExperimentsReport(
        experiments=records[:limit],
        comparisons=[c for c in comparisons if backend is None or c.backend == backend],
        project=listing.project,
        limit=limit,
        more=listing.more or (limit is not None and len(records) > limit),
        notes=listing.notes,
        test_splits=all_statuses(experiments.store),
    )


def inspect_dataset(experiments: Experiments) -> BalanceReport:
    """The balance report of the configured dataset, read from the backend the command runs on."""
    settings = experiments.settings
    target_project = settings.require("target_project", "--target-project", "FACET_OPTIMIZER_TARGET_PROJECT")
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    backend = experiments.backend
    rows = backend.dataset_rows(target_project, dataset, must_exist=True)
    return balance_report(rows, dataset, target_project, backend.name)


def inspect_sql(experiments: Experiments, sql: str) -> SqlResult:
    if not sql.strip():
        raise InputError("empty SQL", hint="pass a query, e.g. \"SELECT id FROM dataset('<name>') LIMIT 5\"")
    return experiments.backend.sql(sql, experiments.resolve, experiments.store)
