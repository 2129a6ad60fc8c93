"""What `facetopt optimize` takes and reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from facetopt.domain.cost import RoleUsage
from facetopt.domain.next_steps import NextStep

PHASES = ("baseline", "propose", "screen", "train", "validate")
RunStatus = Literal["complete", "failed", "interrupted"]


class OptimizeOptions(BaseModel):
    facet: str
    target: str = "balanced"
    candidates: int = 4
    rounds: int = 3
    budget: int | None = None  # calls, every role; None: no cap
    minibatch: int = 30
    finalists: int = 2  # best minibatch candidates scored on the whole train split
    failures_shown: int = 8  # train failures per proposer request
    apply: bool = False
    seed: int = 0


class PhaseSpend(BaseModel):
    """Calls of one phase: every call counts towards --budget, from the cache or not; tokens and
    dollars are what the replies report (a cached call is free)."""

    phase: str
    calls: int = 0
    from_cache: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # estimated from the price table
    evals: list[str] = Field(default_factory=list)  # experiment ids (validate)


class Candidate(BaseModel):
    candidate_id: str  # r<round>c<slot>
    round: int
    slot: int
    parent: str  # candidate id, or "baseline"
    prompt_sha256: str | None = None
    prompt_text: str | None = None
    hypothesis: str | None = None
    family: str | None = None  # the simulated proposer's edit family
    failure_ids: list[str] = Field(default_factory=list)  # the train failures it was shown
    # proposed, proposal_failed, rejected, not_screened, screened, finalist (scored on train), winner
    status: str = "proposed"
    guard_rules: list[str] = Field(default_factory=list)
    guard_reasons: list[str] = Field(default_factory=list)
    error: str | None = None
    minibatch_score: float | None = None  # the target metric's mean on the minibatch
    minibatch_delta: float | None = None  # minus the baseline's, on the same rows
    train_score: float | None = None
    train_delta: float | None = None


class OptimizeReport(BaseModel):
    run_id: str
    # complete: ran to its end (a verdict, or no candidate beat the baseline); failed: no proposal
    # could be parsed, every call failed, or an error stopped it (`cause`); interrupted: stopped by
    # Ctrl-C or a forwarded interrupt. (A process killed outright writes no optimize.json; reports of
    # earlier versions, without the field, read as complete.)
    status: RunStatus = "complete"
    cause: str | None = None
    run_dir: str
    facet: str
    target: str
    metric: str
    dataset: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    proposer_model: str
    proposer_endpoint: str
    model: str
    simulated_roles: list[str] = Field(default_factory=list)
    prompt_file: str
    baseline_sha256: str
    train_rows: int = 0
    validation_rows: int = 0
    minibatch_ids: list[str] = Field(default_factory=list)
    baseline_minibatch_score: float | None = None
    baseline_train_score: float | None = None
    train_failures: dict[str, int] = Field(default_factory=dict)  # fp / fn / error counts
    candidates: list[Candidate] = Field(default_factory=list)
    winner: str | None = None  # candidate id
    winner_sha256: str | None = None
    baseline_experiment: str | None = None
    candidate_experiment: str | None = None
    validation_evals_run: int = 0  # validation evals this run started (the winner's, maybe the baseline's)
    comparison_id: str | None = None
    verdict: str | None = None  # the facet's verdict: KEEP, REJECT, INCONCLUSIVE; None: no winner
    rule: str | None = None
    reasons: list[str] = Field(default_factory=list)
    deltas: dict[str, float | None] = Field(default_factory=dict)
    applied: bool = False
    candidate_file: str | None = None
    diff_file: str | None = None
    diff: str | None = None
    budget: int | None = None
    calls: int = 0
    reserved_for_validation: int = 0
    max_cost: float | None = None
    cost_usd: float = 0.0  # every phase, estimated from the price table
    reserved_cost_usd: float = 0.0  # the estimate kept for the validation eval(s)
    spend: list[PhaseSpend] = Field(default_factory=list)
    usage: list[RoleUsage] = Field(default_factory=list)  # per role (proposer, facet model, judge)
    stopped: str | None = None  # why proposing stopped early (--budget or --max-cost)
    validation_evals: dict[str, int] = Field(default_factory=dict)  # lifetime, per facet, when known
    warnings: list[str] = Field(default_factory=list)
    next_steps: list[NextStep] = Field(default_factory=list)  # what to do now (services/next_steps.py)
