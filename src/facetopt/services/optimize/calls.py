"""Model calls for the optimiser, in-process: a memo (a call is never made twice in one run), the
call cache (a re-run pays only for what it lacks; simulated calls are not kept, as in `eval`) and
the client's rate-limit policy. Each batch reports calls, cache hits, failures and tokens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from facetopt.clients.llm.call_cache import CallCache, call_key
from facetopt.clients.llm.client import ChatRequest, ChatResult, Endpoint, make_chat_client, run_chat_requests


@dataclass
class Batch:
    results: dict[str, ChatResult] = field(default_factory=dict)  # by request key
    calls: int = 0  # new to this run (memo misses): what the budget counts
    from_cache: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Caller:
    def __init__(
        self,
        endpoint: Endpoint,
        store_path: Path | None,
        use_cache: bool,
        timeout: float,
        deadline: float,
        concurrency: int,
    ):
        self.endpoint = endpoint
        self.timeout, self.deadline, self.concurrency = timeout, deadline, concurrency
        self.cache = CallCache(None if endpoint.simulated else store_path, read=use_cache)
        self.memo: dict[str, ChatResult] = {}

    def key(self, request: ChatRequest) -> str:
        return call_key(self.endpoint, request.messages, request.params(), 0)

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
        for result in asyncio.run(self._send(to_send)) if to_send else []:
            self.memo[result.key] = result
            if result.ok and result.text is not None:
                self.cache.put(result.key, kind, result.text, self.endpoint)
            else:
                batch.failed += 1
            batch.prompt_tokens += int(getattr(result, "prompt_tokens", 0) or 0)
            batch.completion_tokens += int(getattr(result, "completion_tokens", 0) or 0)
        batch.results = {r.key: self.memo[r.key] for r in requests}
        return batch

    async def _send(self, requests: list[ChatRequest]) -> list[ChatResult]:
        client = make_chat_client(
            self.endpoint, timeout=self.timeout, concurrency=self.concurrency, deadline=self.deadline
        )
        try:
            return await run_chat_requests(client, requests, self.concurrency, lambda _result: None)
        finally:
            await client.close()

    def close(self) -> None:
        self.cache.close()
