"""Many chat calls at a bounded concurrency (`run_chat_requests`, or `run_chat_stream` for requests
that keep coming), each result handed to a callback as it arrives; a failed call is a result, never
an exception. Retries are the rate-limit policy's (client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetopt.clients.llm.client import (
    CONNECTION_ERROR,
    ENDPOINT_DEAD,
    NOT_SENT_COST,
    UNREACHABLE_AFTER,
    ChatRequest,
    ChatResult,
    chat_once,
    dead_endpoint_error,
    is_connection_error,
)

if TYPE_CHECKING:
    from facetopt.clients.llm.chat_http import ChatClient


async def run_chat_requests(
    client: ChatClient,
    requests: list[ChatRequest],
    concurrency: int,
    on_result: Callable[[ChatResult], None],
    admit: Callable[[ChatRequest], bool] | None = None,
) -> list[ChatResult]:
    """Run `requests` with at most `concurrency` in flight; results come back in request order.
    `run_chat_stream` does the work (and documents `on_result` and `admit`)."""
    feed: asyncio.Queue[ChatRequest | None] = asyncio.Queue()
    for request in requests:
        feed.put_nowait(request)
    workers = max(1, min(concurrency, len(requests)))
    for _ in range(workers):
        feed.put_nowait(None)
    results = await run_chat_stream(client, feed, workers, on_result, admit)
    order = {id(r): i for i, r in enumerate(requests)}
    return [result for _, result in sorted(results, key=lambda pair: order[id(pair[0])])]


async def run_chat_stream(
    client: ChatClient,
    feed: asyncio.Queue[ChatRequest | None],
    concurrency: int,
    on_result: Callable[[ChatResult], None],
    admit: Callable[[ChatRequest], bool] | None = None,
) -> list[tuple[ChatRequest, ChatResult]]:
    """Send the requests put on `feed` as they come, at most `concurrency` in flight; each of the
    `concurrency` workers stops at a None on the feed, so the feeder puts one per worker when done.
    Returns (request, result) pairs in the order the results arrived.

    `on_result` is called once per request, as each result arrives (commit paid labels there).
    When the first UNREACHABLE_AFTER results all failed to connect, the requests not yet sent are
    not sent: they come back as connection errors too, so an unreachable endpoint fails fast.
    An exception raised by `on_result` cancels the run and propagates. `admit(request)` is asked
    just before each request is sent; False leaves it unsent (a result with NOT_SENT_COST).
    When the endpoint is judged dead (rate_limit.py) the requests not yet sent are not sent, and
    once every result was handed to `on_result` (so what was paid is kept) a ModelError says so.
    """
    results: list[tuple[ChatRequest, ChatResult]] = []
    policy = getattr(client, "policy", None)
    dead = (lambda: policy.dead) if policy is not None else None
    state = {"ok": 0, "unreachable": 0}

    async def worker() -> None:
        while (request := await feed.get()) is not None:
            if dead is not None and (reason := dead()) is not None:
                result = ChatResult(key=request.key, error=f"{ENDPOINT_DEAD}: {reason}", attempts=0)
            elif state["ok"] == 0 and state["unreachable"] >= UNREACHABLE_AFTER:
                result = ChatResult(
                    key=request.key,
                    error=f"{CONNECTION_ERROR}: endpoint unreachable, request not sent",
                    attempts=0,
                )
            elif admit is not None and not admit(request):
                result = ChatResult(key=request.key, error=NOT_SENT_COST, attempts=0)
            else:
                result = await chat_once(client, request)
                if result.ok:
                    state["ok"] += 1
                elif is_connection_error(result):
                    state["unreachable"] += 1
            results.append((request, result))
            on_result(result)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, concurrency)):
                group.create_task(worker())
    except BaseExceptionGroup as failed:  # the caller's own error (from on_result), not a group of it
        raise failed.exceptions[0] from None
    if policy is not None and policy.dead is not None:
        raise dead_endpoint_error(getattr(client, "role", "model"), policy.dead)
    return results
