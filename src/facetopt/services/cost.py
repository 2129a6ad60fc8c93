"""Tokens and dollars of one command's paid calls, per role, and the `--max-cost` guard.

Prices come from facets/decide/cost.py (defaults are assumptions; FACET_OPTIMIZER_PRICES overrides them).
Cached calls are free. The guard admits a call only while what is spent plus the estimate of what
is in flight, plus this call's estimate, stays within the limit: a run overshoots by at most the
calls in flight, keeps what was paid, and a re-run resumes from the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from facetopt.domain.cost import RoleUsage
from facetopt.errors import InputError
from facetopt.facets.decide.cost import (
    EXPECTED_LABEL_TOKENS,
    cost_of,
    estimate_prompt_tokens,
    parse_prices,
    price_for,
)
from facetopt.settings import Settings


def prices(settings: Settings) -> dict[str, tuple[float, float]]:
    return parse_prices(settings.prices)


class CostBudget:
    """One command's `--max-cost`, shared by the meters of its roles (facet model and judge share one)."""

    def __init__(self, max_cost: float | None):
        self.max_cost = max_cost
        self.spent = 0.0
        self.in_flight = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def admit(self, estimate: float) -> bool:
        """Reserve `estimate` dollars for a call about to be sent, unless that would pass the limit."""
        with self._lock:
            if self.max_cost is not None and self.spent + self.in_flight + estimate > self.max_cost:
                self.refused += 1
                return False
            self.in_flight += estimate
            return True

    def settle(self, estimate: float, cost: float) -> None:
        """A call came back: release its reservation and add what it cost."""
        with self._lock:
            self.in_flight = max(0.0, self.in_flight - estimate)
            self.spent += cost


class UsageMeter:
    """Usage of one role, updated as replies arrive (thread-safe), within an optional cost budget."""

    def __init__(
        self,
        role: str,
        model: str,
        price_table: Mapping[str, tuple[float, float]],
        budget: CostBudget | None = None,
        reply_tokens: int = EXPECTED_LABEL_TOKENS,
    ):
        price, source = price_for(model, price_table)
        self.reply_tokens = reply_tokens  # the completion tokens a call is expected to use
        self.usage = RoleUsage(role=role, model=model, price_source=source)
        self.price = price
        self.budget = budget or CostBudget(None)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, role: str, model: str, settings: Settings, budget: CostBudget | None = None) -> UsageMeter:
        """A meter priced by the settings' table, limited by `budget` (default: the settings' --max-cost)."""
        return cls(role, model, prices(settings), budget or CostBudget(settings.max_cost))

    @property
    def refused(self) -> int:
        return self.budget.refused

    def estimate(self, messages: Iterable[Mapping[str, Any]], completion_tokens: int | None = None) -> float:
        reply = self.reply_tokens if completion_tokens is None else completion_tokens
        return cost_of(estimate_prompt_tokens(messages), reply, self.price)

    def estimate_tokens(self, prompt_tokens: int, completion_tokens: int) -> float:
        return cost_of(prompt_tokens, completion_tokens, self.price)

    def admit(self, estimate: float) -> bool:
        return self.budget.admit(estimate)

    def settle(self, estimate: float, prompt_tokens: int, completion_tokens: int, replied: bool) -> None:
        """A call came back: release its reservation and add what the reply says was used."""
        with self._lock:
            self.usage.calls += int(replied)
            self.usage.prompt_tokens += prompt_tokens
            self.usage.completion_tokens += completion_tokens
            self.usage.cost_usd = cost_of(self.usage.prompt_tokens, self.usage.completion_tokens, self.price)
        self.budget.settle(estimate, cost_of(prompt_tokens, completion_tokens, self.price))

    def cached(self, calls: int) -> None:
        with self._lock:
            self.usage.cached_calls += calls


def estimate_labelling(
    role: str, model: str, settings: Settings, requests: Iterable[Iterable[Mapping[str, Any]]], cached: int
) -> RoleUsage:
    """A dry-run estimate: each request's prompt from its text, and a short label as the reply."""
    price, source = price_for(model, prices(settings))
    prompt = completion = calls = 0
    for messages in requests:
        calls += 1
        prompt += estimate_prompt_tokens(messages)
        completion += EXPECTED_LABEL_TOKENS
    return RoleUsage(
        role=role,
        model=model,
        calls=calls,
        cached_calls=cached,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost_of(prompt, completion, price),
        price_source=source,
        estimated=True,
    )


def reported_usage(
    role: str, model: str, settings: Settings, usages: Iterable[Mapping[str, Any]], cached: int = 0
) -> RoleUsage:
    """A role's usage summed from the replies' reports ({prompt_tokens, completion_tokens} each, one
    per call that came back); `cached` calls were served from a cache, free."""
    price, source = price_for(model, prices(settings))
    usage = RoleUsage(role=role, model=model, price_source=source, cached_calls=cached)
    for one in usages:
        usage.calls += 1
        usage.prompt_tokens += int(one.get("prompt_tokens") or 0)
        usage.completion_tokens += int(one.get("completion_tokens") or 0)
    usage.cost_usd = cost_of(usage.prompt_tokens, usage.completion_tokens, price)
    return usage


def max_cost_warning(max_cost: float | None, not_sent: int, what: str, meter: UsageMeter) -> str:
    """The warning of a run that `--max-cost` stopped before every call was sent."""
    return (
        f"--max-cost ${max_cost or 0:g} reached: {not_sent} {what} calls were not sent "
        f"(about ${meter.usage.cost_usd:.4f} spent); what was paid is kept, and a re-run resumes "
        "paying only for the rest"
    )


def max_cost_error(max_cost: float | None, what: str, refused: int) -> InputError:
    """Nothing was sent: the limit is below the estimate of the first call."""
    return InputError(
        f"--max-cost ${max_cost or 0:g} is below the estimated cost of the first {what} call: "
        f"nothing was sent ({refused} calls held back)",
        hint="raise --max-cost (FACET_OPTIMIZER_MAX_COST); --dry-run prints the estimate of the whole run",
    )
