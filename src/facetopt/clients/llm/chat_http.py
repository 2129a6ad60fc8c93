"""`ChatClient`: chat completions over plain httpx2, through the rate-limit policy.

Labelling and the eval's facet model need one endpoint, `POST /chat/completions`, and nothing
of the openai SDK but its error texts. Importing the SDK costs about a second and a half of an
end-to-end `dataset create` on an idle 2-core machine (more under load), and its per-request
bookkeeping a few percent at concurrency 128 (bench/bench_dataset_create.py), so these calls go
straight through httpx2; the judge (autoevals) keeps the SDK client of `make_async_client`. Both
send through the same `PolicyTransport`, so they share the policy of their (endpoint, model).
Imported only inside functions (it imports httpx2).
"""

from __future__ import annotations

from typing import Any

import httpx2

from facetopt.clients.llm.endpoints import CONNECTION_ERROR
from facetopt.clients.llm.rate_limit import (
    ATTEMPTS_HEADER,
    CallDeadlineExceeded,
    EndpointDead,
    RateLimitPolicy,
    refusal_message,
)


class ChatCallError(Exception):
    """A failed chat call: `reason` is one line for a report, `attempts` the sends it took."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


class ChatClient:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        base_url: str,
        api_key: str,
        timeout: float,
        policy: RateLimitPolicy | None = None,
    ):
        self.http = http
        self.policy = policy  # the (endpoint, model)'s policy; None when simulated
        self.role = "model"  # the endpoint's role, for the error that ends a run
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    async def complete(self, body: dict[str, Any]) -> tuple[Any, int]:
        """(the reply's JSON, sends it took); raises ChatCallError with a one-line reason."""
        try:
            response = await self.http.post(self.url, json=body, headers=self._headers)
        except (CallDeadlineExceeded, EndpointDead) as exc:
            raise ChatCallError(str(exc)[:400], getattr(exc, "facetopt_attempts", 1)) from None
        except httpx2.TimeoutException as exc:
            attempts = getattr(exc, "facetopt_attempts", 1)
            raise ChatCallError(f"timeout: no reply within {self.timeout}s", attempts) from None
        except httpx2.HTTPError as exc:
            attempts = getattr(exc, "facetopt_attempts", 1)
            raise ChatCallError(f"{CONNECTION_ERROR}: {type(exc).__name__}: {exc}"[:300], attempts) from None
        attempts = int(response.headers.get(ATTEMPTS_HEADER) or 1)
        if response.status_code >= 400:
            raise ChatCallError(_status_reason(response), attempts)
        try:
            return response.json(), attempts
        except ValueError:
            raise ChatCallError(f"invalid reply: not JSON ({response.text[:100]!r})", attempts) from None

    async def close(self) -> None:
        await self.http.aclose()


def _status_reason(response: httpx2.Response) -> str:
    message = refusal_message(response.content)
    return f"HTTP {response.status_code}: {message or response.reason_phrase}"[:300]
