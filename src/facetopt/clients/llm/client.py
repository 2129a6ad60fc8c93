"""The one way facetopt talks to models: OpenAI-compatible endpoints through the openai SDK.

Each role resolves to an `Endpoint` (endpoints.py); either way the caller gets an
`openai.AsyncOpenAI`, and a simulated endpoint answers through `SimulatedTransport`, so services
never special-case it.

`chat_runs.run_chat_requests` runs many chat calls at a bounded concurrency, hands each result to
a callback as it arrives, and never raises for a failed call: retries (429, 5xx, timeouts,
connection resets, honouring Retry-After) are the rate-limit policy's (rate_limit.py), per
(endpoint, model), until a per-call deadline; the SDK's own retries are off.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from facetopt.clients.llm.endpoints import (
    CONNECTION_ERROR,
    OPENAI_DEFAULT_URL,
    Endpoint,
    dead_endpoint_error,
    mixed_simulation_warning,
    probe_endpoint,
    resolve_auditor,
    resolve_facet_model,
    resolve_judge,
    resolve_labeller,
    simulated_endpoint,
    simulated_roles,
)
from facetopt.clients.llm.rate_limit import (
    DEFAULT_DEADLINE,
    ENDPOINT_DEAD,
    PolicyStats,
    policy_for,
)
from facetopt.domain.cost import NOT_SENT_COST
from facetopt.errors import redact_credentials
from facetopt.facets.data.text import content_text, strip_think
from facetopt.facets.prompts.replies import CUT_AT_LIMIT

__all__ = [
    "CONNECTION_ERROR",
    "DEFAULT_DEADLINE",
    "ENDPOINT_DEAD",
    "NOT_SENT_COST",
    "UNREACHABLE_AFTER",
    "ChatRequest",
    "ChatResult",
    "Endpoint",
    "cache_key",
    "chat_once",
    "chat_text",
    "dead_endpoint_error",
    "endpoint_unreachable",
    "is_connection_error",
    "make_async_client",
    "make_chat_client",
    "make_sync_client",
    "mixed_simulation_warning",
    "policy_for",
    "policy_stats",
    "probe_endpoint",
    "request_body",
    "resolve_auditor",
    "resolve_facet_model",
    "resolve_judge",
    "resolve_labeller",
    "simulated_endpoint",
    "simulated_roles",
]

if TYPE_CHECKING:
    import openai

    from facetopt.clients.llm.chat_http import ChatClient

UNREACHABLE_AFTER = 8  # connection failures, with no success yet, before unsent requests are skipped


# -- clients ---------------------------------------------------------------------------------------


def _api_key(endpoint: Endpoint) -> str:
    # a keyless server (a local model) still needs a non-empty key for the SDK
    secret = endpoint.secret()
    return "no-key" if secret is None else secret


def _limits(concurrency: int) -> Any:
    import httpx2

    # httpx-style clients cap the pool at 100 connections by default; a larger concurrency then
    # queues for a connection, so size the pool (and keep-alive) to what is in flight
    size = max(1, concurrency) + 8
    return httpx2.Limits(max_connections=size, max_keepalive_connections=size)


def _openai_args(endpoint: Endpoint, timeout: float) -> dict[str, Any]:
    base_url: str | None
    if endpoint.simulated:
        from facetopt.simulation.transport import SIMULATED_HTTP_BASE

        base_url, api_key = SIMULATED_HTTP_BASE, "simulated"
    else:
        base_url, api_key = endpoint.base_url, _api_key(endpoint)
    # the SDK's own retries are off: every retry is the rate-limit policy's (rate_limit.py)
    return {"base_url": base_url, "api_key": api_key, "timeout": timeout, "max_retries": 0}


def _http_args(
    endpoint: Endpoint, timeout: float, concurrency: int, deadline: float, max_retries: int | None, sync: bool
) -> dict[str, Any]:
    if endpoint.simulated:
        from facetopt.clients.llm.simulated_transport import SimulatedTransport

        return {"transport": SimulatedTransport(), "timeout": timeout}
    import httpx2

    from facetopt.clients.llm.transport import PolicyTransport, SyncPolicyTransport

    policy = policy_for(endpoint.label, endpoint.model)
    policy.start_run(deadline)
    if sync:
        inner: Any = httpx2.HTTPTransport(limits=_limits(concurrency))
        transport: Any = SyncPolicyTransport(inner, policy, deadline, max_retries)
    else:
        inner = httpx2.AsyncHTTPTransport(limits=_limits(concurrency))
        transport = PolicyTransport(inner, policy, deadline, max_retries)
    return {"transport": transport, "timeout": timeout, "follow_redirects": True}


def make_async_client(
    endpoint: Endpoint,
    timeout: float,
    max_retries: int | None = None,
    concurrency: int = 128,
    deadline: float = DEFAULT_DEADLINE,
    on_usage: Callable[[dict[str, int]], None] | None = None,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI for the endpoint whose every request goes through the endpoint's and model's
    rate-limit policy (`policy_for`): retries until `deadline` seconds per call (at most
    `max_retries` retries when given); its connection pool fits `concurrency` requests in flight.
    `on_usage` gets the token usage of every successful reply (for callers that never see the reply,
    such as autoevals' judge)."""
    import httpx2
    import openai

    args = _http_args(endpoint, timeout, concurrency, deadline, max_retries, sync=False)
    if on_usage is not None:

        async def report_usage(response: Any) -> None:
            if response.status_code == 200:
                await response.aread()
                try:
                    on_usage(reply_usage(response.json()))
                except ValueError:
                    pass

        args["event_hooks"] = {"response": [report_usage]}
    http = httpx2.AsyncClient(**args)
    return openai.AsyncOpenAI(**_openai_args(endpoint, timeout), http_client=http)


def make_sync_client(
    endpoint: Endpoint,
    timeout: float,
    max_retries: int | None = None,
    concurrency: int = 16,
    deadline: float = DEFAULT_DEADLINE,
) -> openai.OpenAI:
    import httpx2
    import openai

    http = httpx2.Client(**_http_args(endpoint, timeout, concurrency, deadline, max_retries, sync=True))
    return openai.OpenAI(**_openai_args(endpoint, timeout), http_client=http)


def make_chat_client(
    endpoint: Endpoint,
    timeout: float,
    max_retries: int | None = None,
    concurrency: int = 128,
    deadline: float = DEFAULT_DEADLINE,
) -> ChatClient:
    """A plain-HTTP chat client (chat_http.py) for `chat_once` / `run_chat_requests`, sending through
    the endpoint's and model's rate-limit policy like `make_async_client`."""
    import httpx2

    from facetopt.clients.llm.chat_http import ChatClient

    http = httpx2.AsyncClient(**_http_args(endpoint, timeout, concurrency, deadline, max_retries, sync=False))
    base_url, api_key = (
        _openai_args(endpoint, timeout)["base_url"],
        _openai_args(endpoint, timeout)["api_key"],
    )
    policy = None if endpoint.simulated else policy_for(endpoint.label, endpoint.model)
    client = ChatClient(http, base_url or OPENAI_DEFAULT_URL, api_key, timeout, policy)
    client.role = endpoint.role
    return client


def policy_stats(endpoint: Endpoint) -> PolicyStats | None:
    """What the progress line shows for the endpoint's calls (None when simulated)."""
    return None if endpoint.simulated else policy_for(endpoint.label, endpoint.model).stats()


# -- requests and results --------------------------------------------------------------------------


class ChatRequest(BaseModel):
    key: str  # the label cache key (see `cache_key`)
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    extra_body: dict[str, Any] | None = None
    temperature: float | None = None

    def params(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "extra_body": self.extra_body, "temperature": self.temperature}

    @classmethod
    def build(cls, endpoint: Endpoint, messages: list[dict[str, Any]], **params: Any) -> ChatRequest:
        """A request to `endpoint.model` whose key covers the endpoint, model, messages and parameters."""
        request = cls(key="", model=endpoint.model, messages=messages, **params)
        request.key = cache_key(endpoint.label, endpoint.model, messages, request.params())
        return request


class ChatResult(BaseModel):
    key: str
    text: str | None = None
    error: str | None = None
    attempts: int = 1
    prompt_tokens: int = 0  # as the reply's `usage` reports them (0 when it has none)
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


def cache_key(endpoint_label: str, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """sha256 over a canonical JSON of everything that decides the reply."""
    document = {"endpoint": endpoint_label, "model": model, "messages": messages, "params": params}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def chat_text(completion: Any) -> str:
    """choices[0].message.content of a chat completion (object or dict); "" when absent."""
    choices = (
        completion.get("choices") if isinstance(completion, dict) else getattr(completion, "choices", None)
    )
    if not choices:
        return ""
    message = (
        choices[0].get("message") if isinstance(choices[0], dict) else getattr(choices[0], "message", None)
    )
    content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
    # a reply's text is the model's words even when they look like JSON: only parts lists are flattened
    return content if isinstance(content, str) else content_text(content)


def _max_tokens_param(model: str) -> str:
    # OpenAI's reasoning models refuse `max_tokens`; most other OpenAI-compatible servers know only it
    return "max_completion_tokens" if re.match(r"(?:gpt-5|o\d)", model) else "max_tokens"


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a chat completion request; `extra_body` merges at the top level, as in the SDK."""
    body: dict[str, Any] = {"model": request.model, "messages": request.messages}
    if request.max_tokens is not None:
        body[_max_tokens_param(request.model)] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.extra_body:
        body.update(request.extra_body)
    return body


async def chat_once(client: ChatClient, request: ChatRequest) -> ChatResult:
    """One chat call (the policy's retries included) as a ChatResult; never raises for a failed call."""
    from facetopt.clients.llm.chat_http import ChatCallError

    try:
        completion, attempts = await client.complete(request_body(request))
    except ChatCallError as exc:  # every failure becomes a result: one bad row never sinks a run
        reason = redact_credentials(exc.reason, [client.api_key])
        return ChatResult(key=request.key, error=reason, attempts=exc.attempts)
    except Exception as exc:
        reason = redact_credentials(f"{type(exc).__name__}: {exc}"[:300], [client.api_key])
        return ChatResult(key=request.key, error=reason)
    used = reply_usage(completion)
    text = strip_think(chat_text(completion))
    choices = completion.get("choices") if isinstance(completion, dict) else None
    finish = choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None
    if finish == "length":  # a reply cut short is not what the model meant: never read it as a value
        return ChatResult(key=request.key, error=CUT_AT_LIMIT, attempts=attempts, **used)
    if not text:
        return ChatResult(key=request.key, error="empty reply", attempts=attempts, **used)
    return ChatResult(key=request.key, text=text, attempts=attempts, **used)


def reply_usage(completion: Any) -> dict[str, int]:
    """Prompt and completion tokens from a chat or Responses reply's `usage` (zeros when absent)."""
    usage = completion.get("usage") if isinstance(completion, dict) else None
    if not isinstance(usage, dict):
        return {"prompt_tokens": 0, "completion_tokens": 0}

    def number(*names: str) -> int:
        value = next((usage[n] for n in names if isinstance(usage.get(n), int)), 0)
        return max(0, value)

    return {
        "prompt_tokens": number("prompt_tokens", "input_tokens"),
        "completion_tokens": number("completion_tokens", "output_tokens"),
    }


def is_connection_error(result: ChatResult) -> bool:
    return bool(result.error and result.error.startswith(CONNECTION_ERROR))


def endpoint_unreachable(results: Iterable[ChatResult]) -> bool:
    """True when there were results and every one failed to connect: say "model endpoint unreachable"."""
    results = list(results)
    return bool(results) and all(is_connection_error(r) for r in results)
