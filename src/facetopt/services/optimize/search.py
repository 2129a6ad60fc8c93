"""Rounds of proposals: K candidates per round, each from its own failure sample, guarded, then
screened on the same train minibatch as the baseline; later rounds start from the best so far."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facetopt.clients.llm.client import ChatRequest
from facetopt.clients.prompt_file import FacetPrompt
from facetopt.domain.cost import RoleUsage
from facetopt.domain.dataset import DatasetRow
from facetopt.facets.prompts.prompt_guard import guard_candidate
from facetopt.services.optimize.calls import Batch, Caller
from facetopt.services.optimize.decide import candidate_document
from facetopt.services.optimize.model import Candidate, OptimizeOptions
from facetopt.services.optimize.propose import ask_proposer, failure_sample, proposer_request
from facetopt.services.optimize.screen import RowScore, Scored, score_prompt
from facetopt.services.optimize.spend import Ledger
from facetopt.services.progress import Progress


@dataclass
class Search:
    """What the rounds need, and what they found."""

    options: OptimizeOptions
    prompt_path: Path
    baseline: FacetPrompt
    metric: str
    model: str
    max_tokens: int
    train: list[DatasetRow]
    minibatch: list[DatasetRow]
    model_caller: Caller
    proposer_caller: Caller
    ledger: Ledger
    progress: Progress
    on_candidate: Callable[[Candidate], None]
    candidates: list[Candidate] = field(default_factory=list)
    prompts: dict[str, FacetPrompt] = field(default_factory=dict)  # candidate id -> its prompt
    train_scores: dict[str, Scored] = field(default_factory=dict)  # "baseline" or candidate id
    stopped: str | None = None
    eval_reserve: float = 0.0  # estimated dollars of one validation eval (under --max-cost)
    eval_usage: list[RoleUsage] = field(default_factory=list)  # the validation evals' own reports

    def score(self, facet: FacetPrompt, rows: list[DatasetRow], phase: str) -> Scored:
        scored = score_prompt(self.model_caller, facet, rows, self.metric, self.model, self.max_tokens)
        self.spend(phase, scored.batch)
        return scored

    def spend(self, phase: str, b: Batch) -> None:
        self.ledger.spend(
            phase, b.calls, b.from_cache, b.failed, b.prompt_tokens, b.completion_tokens, b.cost_usd
        )
        if b.not_sent and self.stopped is None:
            self.stopped = (
                f"--max-cost ${self.ledger.max_cost:g}: {b.not_sent} {phase} calls were not sent "
                f"(about ${self.ledger.reserve_cost:.4f} kept for validation)"
            )

    def requests(self, facet: FacetPrompt, rows: list[DatasetRow]) -> list[ChatRequest]:
        from facetopt.services.eval.task import facet_request

        return [
            facet_request(
                facet, str(r.input.get("preprocessed_text") or ""), self.model, self.max_tokens, r.id
            )
            for r in rows
        ]

    def minibatch_requests(self, facet: FacetPrompt) -> list[ChatRequest]:
        return self.requests(facet, self.minibatch)

    def unscored(self, facet: FacetPrompt, rows: list[DatasetRow]) -> tuple[int, float]:
        """Calls scoring `facet` on `rows` would add (rows already called in this run are free) and
        their estimated dollars (calls the cache answers are free)."""
        return self.model_caller.unpaid(self.requests(facet, rows))

    def train_score(self, key: str, facet: FacetPrompt) -> Scored | None:
        """The prompt on the whole train split (once per run), when the budgets allow."""
        if key not in self.train_scores:
            if self.stopped is not None and key != "baseline":
                return None
            if not self.ledger.affords(*self.unscored(facet, self.train)):
                return None
            scored = self.score(facet, self.train, "train" if key != "baseline" else "baseline")
            if scored.batch.not_sent:
                return None  # a partial score decides nothing
            self.train_scores[key] = scored
        return self.train_scores[key]

    def run(self, baseline_minibatch: float | None) -> None:
        parent_id, parent = "baseline", self.baseline
        parent_failures: list[RowScore] = self.train_scores["baseline"].failures()
        best_score = baseline_minibatch if baseline_minibatch is not None else -1.0
        training_texts = [str(r.input.get("preprocessed_text") or "") for r in self.train] + [
            str(r.expected) for r in self.train
        ]
        for round_ in range(self.options.rounds):
            for slot in range(self.options.candidates):
                sample, request = self.proposal(round_, slot, parent, parent_failures)
                calls, dollars = self.proposer_caller.unpaid([request])
                # the candidate is screened on the whole minibatch: estimated from its parent's requests
                calls += len(self.minibatch)
                dollars += sum(
                    self.model_caller.meter.estimate(r.messages) for r in self.minibatch_requests(parent)
                )
                where = f"before round {round_ + 1} candidate {slot + 1}"
                if not self.ledger.affords_calls(calls):
                    self.stopped = (
                        f"the budget of {self.ledger.budget} calls: proposing stopped {where}, keeping "
                        f"{self.ledger.reserve} for validation"
                    )
                elif not self.ledger.affords_cost(dollars):
                    self.stopped = (
                        f"--max-cost ${self.ledger.max_cost:g}: proposing stopped {where} (about "
                        f"${self.ledger.cost:.4f} spent), keeping about ${self.ledger.reserve_cost:.4f} "
                        "for validation"
                    )
                if self.stopped is not None:
                    return
                self.progress.stage(f"round {round_ + 1}/{self.options.rounds}: proposal {slot + 1}")
                candidate = self.propose(round_, slot, parent_id, parent, sample, request, training_texts)
                self.candidates.append(candidate)
                self.on_candidate(candidate)
            screened = [c for c in self.candidates if c.minibatch_score is not None]
            top = max(screened, key=lambda c: c.minibatch_score or 0.0, default=None)
            if (
                top is not None
                and (top.minibatch_score or 0.0) > best_score
                and top.candidate_id != parent_id
            ):
                best_score = top.minibatch_score or 0.0
                parent_id, parent = top.candidate_id, self.prompts[top.candidate_id]
                scored = self.train_score(parent_id, parent) if round_ + 1 < self.options.rounds else None
                if scored is not None:
                    parent_failures = scored.failures()
                    self.record_train(top, scored)

    def proposal(
        self, round_: int, slot: int, parent: FacetPrompt, failures: list[RowScore]
    ) -> tuple[list[RowScore], ChatRequest]:
        """The failure sample a proposal is shown (never a minibatch row: screening must not score a
        candidate on the rows it was written from) and the proposer's request."""
        screened = {r.id for r in self.minibatch}
        outside = [f for f in failures if f.row.id not in screened]
        sample = failure_sample(outside, self.options.failures_shown, f"{self.options.seed}:{round_}:{slot}")
        caller = self.proposer_caller
        request = proposer_request(
            caller.endpoint,
            parent.prompt_text,
            sample,
            slot,
            self.options.candidates,
            round_,
            not caller.text_only,
        )
        return sample, request

    def propose(
        self,
        round_: int,
        slot: int,
        parent_id: str,
        parent: FacetPrompt,
        sample: list[RowScore],
        request: ChatRequest,
        training_texts: list[str],
    ) -> Candidate:
        candidate = Candidate(
            candidate_id=f"r{round_ + 1}c{slot + 1}",
            round=round_ + 1,
            slot=slot + 1,
            parent=parent_id,
            failure_ids=[f.row.id for f in sample],
        )
        proposal = ask_proposer(
            self.proposer_caller, request, parent.prompt_text, lambda b: self.spend("propose", b)
        )
        candidate.hypothesis, candidate.family = proposal.hypothesis, proposal.family
        if proposal.prompt is None:
            candidate.status, candidate.error = "proposal_failed", proposal.error
            return candidate
        candidate.prompt_text = proposal.prompt
        if proposal.prompt.strip() == parent.prompt_text.strip():
            candidate.status, candidate.guard_rules = "rejected", ["unchanged"]
            candidate.guard_reasons = ["the proposal does not change the prompt"]
            return candidate
        decision = guard_candidate(
            self.baseline.prompt_text,
            parent.prompt_text,
            proposal.prompt,
            training_texts,
            self.baseline.no_match_pattern,
        )
        if not decision.passed:
            candidate.status, candidate.guard_rules, candidate.guard_reasons = (
                "rejected",
                decision.rules,
                decision.reasons,
            )
            return candidate
        twin = next(
            (
                c
                for c in self.candidates
                if c.prompt_text == proposal.prompt and c.candidate_id != candidate.candidate_id
            ),
            None,
        )
        if twin is not None:
            candidate.status, candidate.guard_rules = "rejected", ["duplicate"]
            candidate.guard_reasons = [f"the same prompt as {twin.candidate_id}: not screened again"]
            return candidate
        try:
            facet = candidate_document(self.prompt_path, self.baseline.facet_name, proposal.prompt).facet(
                self.baseline.facet_name
            )
        except Exception as exc:  # a prompt the file cannot hold: recorded, the search goes on
            candidate.status, candidate.error = "proposal_failed", f"{type(exc).__name__}: {exc}"[:300]
            return candidate
        candidate.prompt_sha256 = facet.prompt_sha256
        self.prompts[candidate.candidate_id] = facet
        scored = self.score(facet, self.minibatch, "screen")
        if scored.batch.not_sent:  # a partial minibatch decides nothing
            candidate.status = "not_screened"
            candidate.error = f"{scored.batch.not_sent} screening calls not sent: --max-cost reached"
            return candidate
        base = self.train_scores["baseline"]
        ids = {r.id for r in self.minibatch}
        base_values = [r.value for r in base.rows if r.row.id in ids and r.value is not None]
        candidate.status, candidate.minibatch_score = "screened", scored.score
        if scored.score is not None and base_values:
            candidate.minibatch_delta = scored.score - sum(base_values) / len(base_values)
        return candidate

    def record_train(self, candidate: Candidate, scored: Scored) -> None:
        base = self.train_scores["baseline"].score
        candidate.train_score = scored.score
        if scored.score is not None and base is not None:
            candidate.train_delta = scored.score - base
