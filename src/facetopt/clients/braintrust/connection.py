"""A logged-in Braintrust SDK state for one org: what every call of this package takes (made by
`api.connect`; here on its own so that the error translation can name it without importing api)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BraintrustConnection:
    """A logged-in SDK state for one org. Source and target orgs each get their own."""

    state: Any = field(repr=False)  # braintrust.BraintrustState
    org_name: str
    org_id: str
    api_url: str
    proxy_url: str | None
    app_url: str

    def _secret(self) -> str | None:
        return getattr(self.state, "login_token", None)
