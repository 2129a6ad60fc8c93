"""The decision page's data: what `facetopt report --json` prints and the HTML page shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from facetopt.domain.experiments import FacetMetrics
from facetopt.services.experiments.compare import CompareReport


class ForestPoint(BaseModel):
    """One row of the forest plot: a facet's metric, its paired delta and 95% interval."""

    facet_name: str
    metric: str
    role: str  # "target" (decides), "guard" (must not be shown worse), "shown" (reported beside)
    delta: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    verdict: str  # the facet's verdict, which colours the row


class DiscordantRow(BaseModel):
    """A paired row whose binary decision flipped between the runs."""

    id: str
    direction: str  # "fixed" (baseline wrong, candidate right) or "broken" (the reverse)
    expected: str | None = None
    baseline_output: str | None = None
    candidate_output: str | None = None
    permalink: str | None = None


class TrainFailure(BaseModel):
    """A failing row of a train-split run (the page never shows validation or test traces)."""

    id: str
    kind: str
    expected: str | None = None
    output: str | None = None


class FacetPage(BaseModel):
    facet_name: str
    verdict: str
    rule: str
    reasons: list[str] = Field(default_factory=list)
    paired_rows: int = 0
    baseline: FacetMetrics  # confusion counts of the baseline on the paired rows
    candidate: FacetMetrics
    fixed: int = 0  # discordant rows, baseline wrong -> candidate right
    broken: int = 0
    discordant: list[DiscordantRow] = Field(default_factory=list)  # the first ones, broken then fixed
    train_experiment_id: str | None = None  # where the train failure examples come from
    train_failures: list[TrainFailure] = Field(default_factory=list)
    train_note: str | None = None  # why there are no train examples


class AuditFacet(BaseModel):
    facet_name: str
    rows: int = 0
    decision_agreement: float | None = None
    kappa: float | None = None
    kappa_low: float | None = None
    kappa_high: float | None = None
    note: str | None = None
    warning: str | None = None


class AuditSummary(BaseModel):
    run_dir: str
    split: str | None = None
    second_model: str | None = None
    facets: list[AuditFacet] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class OptimizeCandidate(BaseModel):
    candidate_id: str
    status: str
    hypothesis: str | None = None
    guard_reasons: list[str] = Field(default_factory=list)
    minibatch_score: float | None = None
    minibatch_delta: float | None = None
    train_score: float | None = None
    train_delta: float | None = None
    validated: bool = False  # the winner: the one candidate run on validation


class OptimizeSummary(BaseModel):
    run_id: str
    facet: str
    target: str
    verdict: str | None = None
    baseline_train_score: float | None = None
    candidates: list[OptimizeCandidate] = Field(default_factory=list)


class DecisionReport(BaseModel):
    comparison_id: str
    generated: str  # ISO 8601 UTC
    # "recorded": the comparison's own data, kept when it ran; "recomputed": an older comparison,
    # computed again from its two experiments with the recorded target, split, facet and margin
    source: str
    target_metric: str
    guards: list[str] = Field(default_factory=list)
    guard_margin: float
    compare: CompareReport
    forest: list[ForestPoint] = Field(default_factory=list)
    facets: list[FacetPage] = Field(default_factory=list)
    audit: AuditSummary | None = None
    optimize: OptimizeSummary | None = None
    notes: list[str] = Field(default_factory=list)
    html: str | None = None  # the page written, when one was

    def page_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
