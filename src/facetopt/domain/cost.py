"""Token usage and estimated cost per model role."""

from __future__ import annotations

from pydantic import BaseModel

NOT_SENT_COST = "not sent: --max-cost reached"  # a call's error when the cost limit held it back


class RoleUsage(BaseModel):
    """Calls, tokens and estimated US dollars of one role (labeller, facet model, judge) in one command."""

    role: str
    model: str
    calls: int = 0  # paid calls that got a reply
    cached_calls: int = 0  # served from the cache: free
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    price_source: str = "default (assumption)"  # or "settings"
    estimated: bool = False  # a dry-run estimate, not usage reported by the model

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
