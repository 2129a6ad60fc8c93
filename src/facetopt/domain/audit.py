"""The label audit (a second opinion on every row) and the human review round trip."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from facetopt.domain.cost import RoleUsage
from facetopt.domain.next_steps import NextStep

AuditKind = Literal["second-model", "self-consistency"]
Decision = Literal["keep", "second", "new"]


class AuditedRow(BaseModel):
    """One dataset row with its second opinion."""

    id: str
    facet_name: str
    split: str | None = None
    expected: str
    second_opinion: str | None = None  # None: the second labelling failed
    production_output: str | None = None
    permalink: str | None = None
    expected_positive: bool | None = None
    second_positive: bool | None = None
    decision_agrees: bool | None = None
    label_agrees: bool | None = None  # sentiment rows where both give a label
    copies_production: bool = False  # expected is the production output and the second opinion differs
    error: str | None = None

    @property
    def disagrees(self) -> bool:
        return self.decision_agrees is False or self.label_agrees is False


class FacetAudit(BaseModel):
    facet_name: str
    rows: int = 0  # rows with a second opinion
    failed: int = 0  # rows whose second labelling failed
    decision_agreement: float | None = None
    kappa: float | None = None
    kappa_low: float | None = None
    kappa_high: float | None = None
    kappa_note: str | None = None  # why there is no kappa
    broken: str | None = (
        None  # why the second opinion looks broken (then no kappa: it says nothing of the labels)
    )
    sentiment_rows: int = 0
    sentiment_label_agreement: float | None = None
    copies: int = 0
    disagreements: int = 0
    warning: str | None = None


class AuditReport(BaseModel):
    backend: str
    target_project: str
    dataset: str
    kind: AuditKind
    labeller_model: str  # the model that labelled the dataset (from the rows)
    second_model: str
    second_endpoint: str  # base URL or "simulated"; never a key
    simulated_roles: list[str] = Field(default_factory=list)
    interval_method: str
    split: str | None = None
    facet: str | None = None
    sampled: int | None = None
    labels_paid: int = 0
    labels_from_cache: int = 0
    usage: list[RoleUsage] = Field(default_factory=list)  # the second opinion's tokens and dollars
    max_cost: float | None = None
    facets: list[FacetAudit] = Field(default_factory=list)
    disagreeing: list[AuditedRow] = Field(default_factory=list)
    copies: list[AuditedRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    run_dir: str | None = None
    next_steps: list[NextStep] = Field(default_factory=list)  # what to do now (services/next_steps.py)


class ReviewEntry(BaseModel):
    """One row of a review file, as read back after a person edited it."""

    id: str
    facet_name: str = ""
    split: str | None = None
    reason: str = ""  # why it is in the file: disagreement, copy, agreeing sample
    expected: str
    expected_sha256: str
    second_opinion: str | None = None
    decision: Decision | None = None
    new_value: str | None = None


class ReviewExport(BaseModel):
    path: str
    backend: str
    target_project: str
    dataset: str
    entries: int = 0
    disagreements: int = 0
    copies: int = 0
    agreeing_sample: int = 0
    audit_kind: AuditKind
    warnings: list[str] = Field(default_factory=list)


class ReviewChange(BaseModel):
    id: str
    facet_name: str = ""
    split: str | None = None
    decision: Decision
    before: str
    after: str
    bucket_before: str
    bucket_after: str


class ReviewConflict(BaseModel):
    id: str
    reason: str
    exported: str | None = None  # the expected hash in the file
    current: str | None = None


class ReviewApplyReport(BaseModel):
    path: str
    backend: str
    target_project: str
    dataset: str
    dry_run: bool = False
    entries: int = 0
    undecided: int = 0
    changed: list[ReviewChange] = Field(default_factory=list)
    confirmed: int = 0  # the row held the decision already: only the human review was recorded
    unchanged: int = 0  # the row holds the decision and its human review: nothing to do
    conflicts: list[ReviewConflict] = Field(default_factory=list)
    written: int = 0
    verified: int = 0
    warnings: list[str] = Field(default_factory=list)
