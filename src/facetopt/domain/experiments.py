"""Eval results, the experiment registry, metrics and comparisons."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SCORE_NAMES = (
    "binary_decision_match",
    "positive_recall",
    "negative_specificity",
    "sentiment_label_correct",
    "Factuality",
)


class EvalRow(BaseModel):
    """One dataset row's result in an experiment (means over trials when trials > 1)."""

    id: str  # dataset row id
    facet_name: str
    split: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    expected: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ExperimentRecord(BaseModel):
    """One eval run as kept in the local registry."""

    experiment_id: str
    experiment_name: str
    url: str | None = None
    backend: str
    project: str | None = None
    model: str
    dataset: str
    dataset_project: str | None = None
    split: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    prompt_file: str | None = None
    prompt_hashes: dict[str, str] = Field(default_factory=dict)
    row_count: int = 0
    error_count: int = 0
    created: str  # ISO 8601 UTC
    runner: str | None = None  # "bt" or "braintrust-sdk"
    simulated_roles: list[str] = Field(default_factory=list)
    stored_locally: bool = True
    # "complete"; "partial": created in Braintrust but not every row reached it (the rows are kept
    # locally); "not_logged": never reached Braintrust (kept locally under a facetopt id)
    status: Literal["complete", "partial", "not_logged"] = "complete"
    logged_rows: int | None = None  # rows that reached Braintrust, when not every one did
    superseded_by: str | None = None  # the experiment id of the run that replaced this one
    run_dir: str | None = None


class FacetMetrics(BaseModel):
    facet_name: str  # "overall" for all facets
    n: int = 0
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    binary_decision_match: float | None = None
    positive_recall: float | None = None
    negative_specificity: float | None = None
    precision: float | None = None
    f1: float | None = None
    factuality: float | None = None
    sentiment_label_accuracy: float | None = None
    errored: int = 0


Verdict = Literal["KEEP", "REJECT", "INCONCLUSIVE"]


class MetricDelta(BaseModel):
    metric: str
    baseline: float | None = None
    candidate: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0


class FacetComparison(BaseModel):
    facet_name: str
    paired_rows: int
    deltas: list[MetricDelta] = Field(default_factory=list)
    mcnemar_b: int = 0  # baseline right, candidate wrong
    mcnemar_c: int = 0  # baseline wrong, candidate right
    mcnemar_p: float | None = None
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    rows_needed: int | None = None
