"""Ground-truth labelling with a content-hash cache: paid labels are never paid twice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from facetopt.clients.artifacts import JsonlJournal
from facetopt.clients.llm.client import (
    ChatRequest,
    ChatResult,
    Endpoint,
    is_connection_error,
    make_async_client,
    run_chat_requests,
)
from facetopt.clients.local.store import LocalStore
from facetopt.domain.spans import FacetCall
from facetopt.errors import ModelError
from facetopt.services.progress import Progress


@dataclass
class LabelOutcome:
    labels: dict[str, str] = field(default_factory=dict)  # call key -> label
    failures: dict[str, str] = field(default_factory=dict)  # call key -> reason
    # every count is in calls (dataset rows), so calls = from_cache + paid + len(failures);
    # identical calls share one request, so requests_paid (what was bought) can be fewer than paid
    from_cache: int = 0
    paid: int = 0
    requests_paid: int = 0


def call_key(call: FacetCall) -> str:
    return f"{call.source_row_id}:{call.facet_name}"


def label_messages(call: FacetCall) -> list[dict]:
    """The wrapper messages with the data, then the facet prompt as a final user message."""
    return [*call.messages, {"role": "user", "content": call.prompt_text}]


def label_request(call: FacetCall, endpoint: Endpoint, max_tokens: int) -> ChatRequest:
    return ChatRequest.build(endpoint, label_messages(call), max_tokens=max_tokens)


def label_calls(
    calls: list[FacetCall],
    endpoint: Endpoint,
    store: LocalStore,
    journal_path: Path,
    *,
    concurrency: int,
    max_tokens: int,
    timeout: float,
    progress: Progress,
) -> LabelOutcome:
    outcome = LabelOutcome()
    requests = {call_key(c): label_request(c, endpoint, max_tokens) for c in calls}
    cached = store.cached_labels([r.key for r in requests.values()])
    pending: list[ChatRequest] = []
    owners: dict[str, list[str]] = {}
    for key, request in requests.items():
        if request.key in cached:
            outcome.labels[key] = cached[request.key]
            outcome.from_cache += 1
        else:
            if request.key not in owners:
                pending.append(request)
            owners.setdefault(request.key, []).append(key)
    if not pending:
        return outcome

    progress.start("labelling", sum(len(keys) for keys in owners.values()))
    journal = JsonlJournal(journal_path)
    connection_failures = 0
    try:
        with store.label_writer() as writer:

            def on_result(result: ChatResult) -> None:
                nonlocal connection_failures
                keys = owners[result.key]
                if result.text:
                    writer.put(result.key, result.text, endpoint.model, endpoint.label)
                    journal.append({"cache_key": result.key, "rows": keys, "label": result.text})
                    for key in keys:
                        outcome.labels[key] = result.text
                    outcome.paid += len(keys)
                    outcome.requests_paid += 1
                else:
                    reason = result.error or "empty reply"
                    connection_failures += is_connection_error(result)
                    for key in keys:
                        outcome.failures[key] = reason
                progress.advance("labelling", len(keys))

            client = make_async_client(endpoint, timeout=timeout, concurrency=concurrency)
            asyncio.run(run_chat_requests(client, pending, concurrency=concurrency, on_result=on_result))
    finally:
        journal.close()
        progress.finish("labelling")
    if connection_failures == len(pending):
        raise ModelError(
            f"the ground-truth model endpoint is unreachable ({endpoint.label})",
            hint="check --ground-truth-api-base / FACET_OPTIMIZER_GROUND_TRUTH_API_BASE and your network",
        )
    return outcome
