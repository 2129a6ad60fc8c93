"""The optimiser's budgets: calls (`--budget`) and estimated dollars (`--max-cost`). Every call
counts towards --budget (proposer, facet model, judge), whether the cache answers it or not, so a
re-run follows the same path and pays only for what the cache lacks; dollars are what the replies
report, priced by the table (a cached call is free). The final validation eval's calls and
estimated dollars are reserved before anything else is spent."""

from __future__ import annotations

import math

from facetopt.errors import InputError
from facetopt.services.optimize.model import PHASES, PhaseSpend


class Ledger:
    def __init__(
        self, budget: int | None, reserve: int, max_cost: float | None = None, reserve_cost: float = 0.0
    ):
        self.budget = budget
        self.reserve = reserve  # calls kept for the validation eval(s)
        self.max_cost = max_cost
        self.reserve_cost = reserve_cost  # estimated dollars kept for the validation eval(s)
        self.phases = {name: PhaseSpend(phase=name) for name in PHASES}

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.phases.values())

    @property
    def cost(self) -> float:
        return sum(p.cost_usd for p in self.phases.values())

    def affords(self, calls: int, dollars: float = 0.0, reserve: bool = True) -> bool:
        """True when `calls` more (estimated at `dollars`) still leave the validation reserve."""
        return self.affords_calls(calls, reserve) and self.affords_cost(dollars, reserve)

    def affords_calls(self, calls: int, reserve: bool = True) -> bool:
        if self.budget is None:
            return True
        return self.calls + calls + (self.reserve if reserve else 0) <= self.budget

    def affords_cost(self, dollars: float, reserve: bool = True) -> bool:
        if self.max_cost is None:
            return True
        return self.cost + dollars + (self.reserve_cost if reserve else 0.0) <= self.max_cost

    def search_limit(self) -> float | None:
        """The dollars proposing, screening and train scoring may spend: the rest is the reserve."""
        return None if self.max_cost is None else max(0.0, self.max_cost - self.reserve_cost)

    def remaining(self) -> float | None:
        """Dollars still unspent under --max-cost (what the validation eval may use)."""
        return None if self.max_cost is None else max(0.0, self.max_cost - self.cost)

    def require(self, calls: int, dollars: float, what: str) -> None:
        if not self.affords_calls(calls):
            raise InputError(
                f"--budget {self.budget} cannot cover {what} ({calls} calls) and the final validation "
                f"eval ({self.reserve} calls)",
                hint=f"give at least --budget {self.calls + calls + self.reserve}, or a smaller --minibatch",
            )
        if not self.affords_cost(dollars):
            need = (
                math.ceil((self.cost + dollars + self.reserve_cost) * 10_000) / 10_000
            )  # the floor enforced
            raise InputError(
                f"--max-cost ${self.max_cost:g} cannot cover {what} (about ${dollars:.4f}) and the final "
                f"validation eval (about ${self.reserve_cost:.4f}); nothing was sent",
                hint=f"give at least --max-cost {need:.4f} (prices are assumptions: "
                "FACET_OPTIMIZER_PRICES sets them)",
            )

    def spend(
        self,
        phase: str,
        calls: int,
        from_cache: int = 0,
        failed: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        spent = self.phases[phase]
        spent.calls += calls
        spent.from_cache += from_cache
        spent.failed += failed
        spent.prompt_tokens += prompt_tokens
        spent.completion_tokens += completion_tokens
        spent.cost_usd += cost_usd

    def release(self, calls: int, dollars: float) -> None:
        """A validation eval is being spent: what it costs is no longer held back."""
        self.reserve = max(0, self.reserve - calls)
        self.reserve_cost = max(0.0, self.reserve_cost - dollars)

    def report(self) -> list[PhaseSpend]:
        return list(self.phases.values())
