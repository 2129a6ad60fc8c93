"""Dataset rows and the dataset-create report."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

from facetopt.domain.cost import RoleUsage
from facetopt.domain.next_steps import NextStep

Split = Literal["train", "validation", "test"]

METADATA_KEYS = (
    "source_project",
    "source_project_id",
    "source_org",
    "source_model",
    "source_root_span_id",
    "source_span_id",
    "source_row_id",
    "source_created",
    "source_weak_bucket",
    "source_facet_value",
    "source_trace_permalink",
    "production_output",
    "facet_prompt_sha256",
    "ground_truth_model",
    "ground_truth_generated_at",
    "split",
    "split_seed",  # the seed this row was split with (sticky: a later run keeps its split)
    "conversation_key",  # facets.placement.conversation_key(facet, text): duplicates share it
)


def expected_sha256(expected: str | None) -> str:
    """The hash of a row's expected (its exact text) that review files and experiment rows record."""
    return hashlib.sha256((expected or "").encode("utf-8")).hexdigest()


class DatasetRow(BaseModel):
    """A row as stored in a Braintrust dataset (and the local store): id, input, expected, metadata, tags."""

    id: str
    input: dict[str, Any]  # {"facet_name", "preprocessed_text"}
    expected: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    @property
    def facet_name(self) -> str:
        return str(self.input.get("facet_name", ""))

    @property
    def split(self) -> str | None:
        return self.metadata.get("split")


class FailedRow(BaseModel):
    id: str
    facet_name: str
    reason: str


class FacetBalance(BaseModel):
    facet_name: str
    rows: int = 0
    positive: int = 0
    negative: int = 0
    train: int = 0
    validation: int = 0
    test: int = 0
    duplicate_groups: int = 0  # conversations (facet, whitespace-normalised text) held by 2+ rows
    duplicate_rows: int = 0  # rows in those groups
    straddling_groups: int = 0  # of those groups, how many sit in more than one split


class BalanceReport(BaseModel):
    dataset: str
    target_project: str
    backend: str
    facets: list[FacetBalance] = Field(default_factory=list)
    total: FacetBalance = Field(default_factory=lambda: FacetBalance(facet_name="total"))
    warnings: list[str] = Field(default_factory=list)


class DatasetCounts(BaseModel):
    """How many at each stage of `dataset create` (summary.json's `counts`, keys as the original
    scripts wrote them)."""

    candidates: int = 0  # source spans the query returned
    final_facets: int = 0  # final facet value rows read for their traces
    parsed_calls: int = 0  # facet calls parsed from the candidates
    parse_failures: int = 0
    selected_calls: int = 0  # sampled for labelling
    dataset_rows: int = 0  # labelled rows in dataset_rows.jsonl
    uploaded_rows: int = 0  # rows stored locally, or verified in Braintrust by reading back
    dataset_total_rows: int | None = None  # rows the dataset holds after the upload, read back
    rows_from_earlier_runs: int | None = None  # of those, rows the dataset held before this run
    duplicate_rows_merged: int = 0  # repeats of a row id with the same label, dropped
    existing_rows: int | None = None  # rows of this run the dataset already held (their split kept)
    kept_reviewed_labels: int = 0  # rows whose label a person decided: that label was kept
    placed_by_duplicates: int = 0  # new rows given the split of their duplicate conversation
    placed_by_traces: int = 0  # new rows whose trace is held out (or used) in another dataset


class DatasetCreateSummary(BaseModel):
    run_id: str
    run_dir: str
    backend: str
    dry_run: bool = False
    source_project: str | None = None
    target_project: str | None = None
    dataset: str | None = None
    ground_truth_model: str
    ground_truth_endpoint: str  # base URL or "simulated"; never a key
    simulated_roles: list[str] = Field(default_factory=list)
    counts: DatasetCounts = Field(default_factory=DatasetCounts)
    weak_bucket_counts: dict[str, Any] = Field(default_factory=dict)
    weak_bucket_sources: dict[str, int] = Field(default_factory=dict)
    final_bucket_counts: dict[str, Any] = Field(default_factory=dict)
    split_counts: dict[str, Any] = Field(default_factory=dict)
    prompt_hashes: dict[str, str] = Field(default_factory=dict)
    # label counts are in calls and add up: label_calls = labels_from_cache + labels_paid + labels_failed
    label_calls: int = 0
    labels_from_cache: int = 0
    labels_paid: int = 0
    labels_failed: int = 0
    label_requests_paid: int = 0  # identical calls share one paid request
    failed_rows: list[FailedRow] = Field(default_factory=list)
    skipped_source_lines: int = 0
    # of those, lines left out before DuckDB read the file, by reason ("longer than 16 MiB", ...)
    skipped_source_line_reasons: dict[str, int] = Field(default_factory=dict)
    rows_without_ids: int = 0
    balance: BalanceReport | None = None
    warnings: list[str] = Field(default_factory=list)
    would_label: dict[str, dict[str, int]] = Field(default_factory=dict)
    usage: list[RoleUsage] = Field(default_factory=list)  # per role; estimated on --dry-run
    max_cost: float | None = None
    # --dry-run: the run folder's files (what was read and sampled); nothing else is written
    dry_run_wrote: list[str] = Field(default_factory=list)
    next_steps: list[NextStep] = Field(default_factory=list)  # what to do now (services/next_steps.py)
