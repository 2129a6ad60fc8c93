"""Eval results, the experiment registry, metrics and comparisons."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from facetopt.domain.dataset import expected_sha256

SCORE_NAMES = (
    "binary_decision_match",
    "positive_recall",
    "negative_specificity",
    "sentiment_label_correct",
    "Factuality",
)


# Experiment metadata keys facetopt adds beside the original eval's (which it keeps as they are):
# who ran it, and each facet prompt's text under its sha256, so any machine with access to the
# project can show the prompt diff and the prompt history of a run.
FACETOPT_VERSION_KEY = "facetopt_version"
PROMPT_TEXTS_KEY = "prompt_texts"
# written "running" when the experiment is created and set to the run's final status at its end,
# so an experiment listed from Braintrust that never recorded its end reads as unfinished
RUN_STATUS_KEY = "facetopt_status"
RUN_STATUS_CAUSE_KEY = "facetopt_status_cause"
RUNNING = "running"
# in a row's metadata: its model call failed, so its scores are None (the eval logs it there)
EVAL_ERROR_KEY = "eval_error"

RunStatus = Literal["complete", "partial", "failed", "interrupted"]
LABEL_KEY = "label"  # `eval --name LABEL`


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
    # the label the row was scored against: compare pairs only rows whose label is the same on both sides
    expected_sha256: str | None = None

    @model_validator(mode="after")
    def _hash_expected(self) -> EvalRow:
        if self.expected_sha256 is None and self.expected is not None:
            self.expected_sha256 = expected_sha256(self.expected)
        return self

    @property
    def human_reviewed(self) -> bool:
        """True when a person decided this row's label (`dataset review apply`)."""
        review = self.metadata.get("review")
        return isinstance(review, dict) and review.get("decided_by") == "human"


class ExperimentRecord(BaseModel):
    """One experiment: an eval run kept in the local registry, or one listed from a Braintrust
    project (whoever ran it), enriched by the registry when both know it."""

    experiment_id: str
    experiment_name: str
    label: str | None = None  # `eval --name`: names the run wherever an experiment is named
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
    # {sha256: text} read from the experiment's metadata; not listed, not kept in the registry
    prompt_texts: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)
    dataset_id: str | None = None
    row_count: int | None = 0  # None: not known (a project experiment this registry did not run)
    error_count: int | None = 0
    created: str  # ISO 8601 UTC
    runner: str | None = None  # "bt" or "braintrust-sdk"
    simulated_roles: list[str] = Field(default_factory=list)
    stored_locally: bool = True
    by_facetopt: bool = True  # False: logged by something else (the original scripts, the UI, ...)
    in_registry: bool = True  # False: known only from the Braintrust project's listing
    # "complete": every selected row has a result and the command ended well; otherwise "partial"
    # (some rows have no result, or not every row reached Braintrust), "failed" (every row failed,
    # or the command failed) or "interrupted" (a signal stopped it); `status_cause` says why
    status: RunStatus = "complete"
    status_cause: str | None = None
    logged_rows: int | None = None  # rows that reached Braintrust, when not every one did
    selected_rows: int | None = None  # (row, trial)s the run set out to evaluate; None: not known
    scored_results: int | None = None  # of those, the ones the runner scored (the results file)
    superseded_by: str | None = None  # the experiment id of the run that replaced this one
    run_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_status(cls, data: Any) -> Any:
        """A registry entry of an earlier facetopt: `not_logged` was an unfinished run that never
        reached Braintrust, i.e. partial with no logged row."""
        if isinstance(data, dict) and data.get("status") == "not_logged":
            data = {**data, "status": "partial", "logged_rows": 0}
            data.setdefault("status_cause", "unfinished: the run never reached Braintrust")
        return data

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def describe_status(self) -> str:
        """`'name' (id): failed: every row failed` for messages."""
        cause = f": {self.status_cause}" if self.status_cause else ""
        return f"{self.experiment_name!r} ({self.experiment_id}) is {self.status}{cause}"

    # facets with test rows in the dataset when this ran (publish then asks for a run on test);
    # None: not known (a run from before test splits, or not by facetopt)
    test_facets: list[str] | None = None


class HoldoutTouch(BaseModel):
    """One look at a dataset's test rows by one facet prompt version."""

    dataset_project: str
    dataset: str
    facet_name: str
    prompt_sha: str
    experiment_id: str
    command: str  # "eval", "inspect failures"
    forced: bool = False


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
    n: int = 0  # paired rows that have this score on both sides
    worse: int = 0  # paired rows where the candidate scored lower than the baseline
    better: int = 0  # paired rows where the candidate scored higher
    method: str | None = None  # "newcombe" (0/1 scores) or "bootstrap"
    rows_needed: int | None = None  # more paired rows (of this metric's kind) to settle its change
    sd: float | None = None  # standard deviation of the per-row change (sample sizes use it)
    note: str | None = None


class FacetComparison(BaseModel):
    facet_name: str
    paired_rows: int
    deltas: list[MetricDelta] = Field(default_factory=list)
    # McNemar on the judged (target) metric's own pairs: b baseline right only, c candidate right only
    mcnemar_metric: str | None = None
    mcnemar_b: int = 0
    mcnemar_c: int = 0
    mcnemar_p: float | None = None
    verdict: Verdict
    # too_few_rows, target_below_zero, guard_worse, target_above_zero, guard_unassessed,
    # guard_unsettled or unsettled
    rule: str = "unsettled"
    reasons: list[str] = Field(default_factory=list)
    # INCONCLUSIVE only: the target's rows needed, or (target settled) the largest guard's
    rows_needed: int | None = None
    # INCONCLUSIVE only: more paired rows to settle the target and each unsettled guard
    rows_needed_by_metric: dict[str, int] = Field(default_factory=dict)
    guard_margin: float | None = None  # how far a guard may fall (non-inferiority margin)
    no_guard: list[str] = Field(default_factory=list)  # guards the user chose not to check
    # guards without an assessment: those named in no_guard, and those that blocked a KEEP
    unassessed_guards: list[str] = Field(default_factory=list)
    folded_rows: int = 0  # duplicate-conversation rows counted once (left out of the statistics)


class FacetDecision(BaseModel):
    """One facet's verdict in a recorded comparison, with the prompt versions it judged."""

    facet_name: str  # "overall" for all facets together
    verdict: Verdict
    rule: str
    paired_rows: int
    baseline_sha: str | None = None
    candidate_sha: str | None = None
    rows_needed: int | None = None
    unassessed_guards: list[str] = Field(default_factory=list)


class ComparisonRecord(BaseModel):
    """A `facetopt compare` as kept in the store: what was compared and what was decided."""

    comparison_id: str
    created: str  # ISO 8601 UTC
    backend: str
    dataset: str
    dataset_project: str | None = None
    baseline_experiment_id: str
    baseline_experiment_name: str
    candidate_experiment_id: str
    candidate_experiment_name: str
    baseline_prompt_hashes: dict[str, str] = Field(default_factory=dict)
    candidate_prompt_hashes: dict[str, str] = Field(default_factory=dict)
    split: str | None = None
    facet: str | None = None
    target: str
    tolerance: float  # the guard margin (its first name)
    guard_margin: float | None = None  # None in records from before the margin rule
    no_guard: list[str] = Field(default_factory=list)
    folded_rows: int = 0
    overall_verdict: Verdict
    decisions: list[FacetDecision] = Field(default_factory=list)


class PromptDecision(BaseModel):
    """What a comparison decided about one prompt version (its hash was the candidate's)."""

    prompt_sha256: str
    facet_name: str
    verdict: Verdict
    rule: str
    paired_rows: int
    comparison_id: str
    created: str
    target: str
    split: str | None = None
    dataset: str
    baseline_experiment_id: str
    candidate_experiment_id: str
    baseline_sha: str | None = None
