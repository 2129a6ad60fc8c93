"""Model calls for the optimiser, in-process: a memo (a call is never made twice in one run), the
call cache (a re-run pays only for what it lacks; simulated calls are not kept, as in `eval`) and
the client's rate-limit policy. Each call's reply usage goes to the role's meter (a cached call is
free), whose cost budget may hold a call back (`--max-cost`). Each batch reports calls, cache hits,
failures, calls not sent, tokens and dollars."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from facetopt.clients.llm.call_cache import CallCache, call_key
from facetopt.clients.llm.chat_runs import run_chat_requests
from facetopt.clients.llm.client import ChatRequest, ChatResult, Endpoint, make_chat_client
from facetopt.domain.cost import NOT_SENT_COST
from facetopt.services.cost import UsageMeter


@dataclass
class Batch:
    results: dict[str, ChatResult] = field(default_factory=dict)  # by request key
    calls: int = 0  # new to this run (memo misses): what the budget counts
    from_cache: int = 0
    failed: int = 0
    not_sent: int = 0  # held back by --max-cost (also counted as failed)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class Caller:
    def __init__(
        self,
        endpoint: Endpoint,
        meter: UsageMeter,
        store_path: Path | None,
        use_cache: bool,
        timeout: float,
        deadline: float,
        concurrency: int,
    ):
        self.endpoint, self.meter = endpoint, meter
        self.timeout, self.deadline, self.concurrency = timeout, deadline, concurrency
        self.cache = CallCache(None if endpoint.simulated else store_path, read=use_cache)
        self.memo: dict[str, ChatResult] = {}
        self.text_only = False  # the endpoint refused structured output (the proposer then asks in text)

    def key(self, request: ChatRequest) -> str:
        return call_key(self.endpoint, request.messages, request.params(), 0)

    @staticmethod
    def estimate_requests(meter: UsageMeter, requests: list[ChatRequest]) -> tuple[int, float]:
        """Calls and estimated dollars of `requests`, as if none were cached."""
        return len({r.key for r in requests}), sum(meter.estimate(r.messages) for r in requests)

    def unpaid(self, requests: list[ChatRequest]) -> tuple[int, float]:
        """Calls `requests` would add to this run (memo misses) and the estimated dollars of those the
        cache cannot answer (a cached call is free)."""
        fresh = {self.key(r): r for r in requests}
        fresh = {k: r for k, r in fresh.items() if k not in self.memo}
        self.cache.load(list(fresh))
        dollars = sum(
            self.meter.estimate(r.messages)
            for k, r in fresh.items()
            if not (self.cache.read and isinstance(self.cache.entries.get(k), str))
        )
        return len(fresh), dollars

    def run(self, requests: list[ChatRequest], kind: str) -> Batch:
        """Results of `requests` keyed by their cache key (request.key is set to it)."""
        batch = Batch()
        fresh: dict[str, ChatRequest] = {}
        for request in requests:
            request.key = self.key(request)
            if request.key not in self.memo and request.key not in fresh:
                fresh[request.key] = request
        batch.calls = len(fresh)
        self.cache.load(list(fresh))
        to_send = []
        for key, request in fresh.items():
            cached = self.cache.get(key)
            if isinstance(cached, str):
                self.memo[key] = ChatResult(key=key, text=cached)
                batch.from_cache += 1
            else:
                to_send.append(request)
        self.meter.cached(batch.from_cache)
        for result in asyncio.run(self._send(to_send, kind)) if to_send else []:
            if result.error == NOT_SENT_COST:
                batch.not_sent += 1
            else:
                self.memo[result.key] = result
            if not (result.ok and result.text is not None):
                batch.failed += 1
            batch.prompt_tokens += result.prompt_tokens
            batch.completion_tokens += result.completion_tokens
            batch.cost_usd += self.meter.estimate_tokens(result.prompt_tokens, result.completion_tokens)
        batch.results = {
            r.key: self.memo.get(r.key) or ChatResult(key=r.key, error=NOT_SENT_COST, attempts=0)
            for r in requests
        }
        return batch

    async def _send(self, requests: list[ChatRequest], kind: str) -> list[ChatResult]:
        client = make_chat_client(
            self.endpoint, timeout=self.timeout, concurrency=self.concurrency, deadline=self.deadline
        )
        reserved: dict[str, float] = {}

        def admit(request: ChatRequest) -> bool:
            estimate = self.meter.estimate(request.messages)
            if not self.meter.admit(estimate):
                return False
            reserved[request.key] = estimate
            return True

        def settle(result: ChatResult) -> None:
            # cached as it arrives: a run stopped by a dead endpoint keeps what it paid for
            if result.ok and result.text is not None:
                self.cache.put(result.key, kind, result.text, self.endpoint)
            if result.key in reserved:
                self.meter.settle(
                    reserved.pop(result.key), result.prompt_tokens, result.completion_tokens, result.ok
                )

        try:
            return await run_chat_requests(client, requests, self.concurrency, settle, admit)
        finally:
            await client.close()

    def close(self) -> None:
        self.cache.close()
