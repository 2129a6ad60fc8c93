"""The optimiser's call budget: every call counts (proposer, facet model, judge), whether the cache
answers it or not, so a re-run follows the same path and pays only for what the cache lacks; the
final validation eval's calls are reserved before anything else is spent."""

from __future__ import annotations

from facetopt.errors import InputError
from facetopt.services.optimize.model import PHASES, PhaseSpend


class Ledger:
    def __init__(self, budget: int | None, reserve: int):
        self.budget = budget
        self.reserve = reserve  # calls kept for the validation eval(s)
        self.phases = {name: PhaseSpend(phase=name) for name in PHASES}

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.phases.values())

    def affords(self, calls: int, reserve: bool = True) -> bool:
        """True when `calls` more still leave the validation reserve (and fit at all)."""
        if self.budget is None:
            return True
        return self.calls + calls + (self.reserve if reserve else 0) <= self.budget

    def require(self, calls: int, what: str) -> None:
        if not self.affords(calls):
            raise InputError(
                f"--budget {self.budget} cannot cover {what} ({calls} calls) and the final validation "
                f"eval ({self.reserve} calls)",
                hint=f"give at least --budget {self.calls + calls + self.reserve + 20}, or a smaller --minibatch",
            )

    def spend(
        self,
        phase: str,
        calls: int,
        from_cache: int = 0,
        failed: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        spent = self.phases[phase]
        spent.calls += calls
        spent.from_cache += from_cache
        spent.failed += failed
        spent.prompt_tokens += prompt_tokens
        spent.completion_tokens += completion_tokens

    def release(self, calls: int) -> None:
        """The validation eval is being spent: what it costs is no longer held back."""
        self.reserve = max(0, self.reserve - calls)

    def report(self) -> list[PhaseSpend]:
        return list(self.phases.values())
