"""Ground-truth labelling with a content-hash cache: paid labels are never paid twice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from facetopt.clients.artifacts import JsonlJournal
from facetopt.clients.llm.client import (
    NOT_SENT_COST,
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
from facetopt.facets.cost import EXPECTED_LABEL_TOKENS
from facetopt.services.cost import UsageMeter
from facetopt.services.progress import Progress


@dataclass
class LabelOutcome:
    labels: dict[str, str] = field(default_factory=dict)  # call key -> label
    failures: dict[str, str] = field(default_factory=dict)  # call key -> reason
    from_cache: int = 0
    paid: int = 0
    not_sent: int = 0  # left unsent by --max-cost


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
    meter: UsageMeter | None = None,
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
    if meter is not None:
        meter.cached(outcome.from_cache)
    if not pending:
        return outcome
    estimates = {r.key: meter.estimate(r.messages, EXPECTED_LABEL_TOKENS) for r in pending} if meter else {}

    def admit(request: ChatRequest) -> bool:
        return meter is None or meter.admit(estimates[request.key])

    progress.start("labelling", len(pending))
    journal = JsonlJournal(journal_path)
    connection_failures = 0
    try:
        with store.label_writer() as writer:

            def on_result(result: ChatResult) -> None:
                nonlocal connection_failures
                keys = owners[result.key]
                if meter is not None and result.error != NOT_SENT_COST:
                    meter.settle(
                        estimates[result.key],
                        result.prompt_tokens,
                        result.completion_tokens,
                        bool(result.text),
                    )
                if result.text:
                    writer.put(result.key, result.text, endpoint.model, endpoint.label)
                    journal.append({"cache_key": result.key, "rows": keys, "label": result.text})
                    for key in keys:
                        outcome.labels[key] = result.text
                    outcome.paid += 1
                elif result.error == NOT_SENT_COST:
                    outcome.not_sent += 1
                    for key in keys:
                        outcome.failures[key] = NOT_SENT_COST
                else:
                    reason = result.error or "empty reply"
                    connection_failures += is_connection_error(result)
                    for key in keys:
                        outcome.failures[key] = reason
                progress.advance("labelling")

            client = make_async_client(endpoint, timeout=timeout, concurrency=concurrency)
            asyncio.run(
                run_chat_requests(client, pending, concurrency=concurrency, on_result=on_result, admit=admit)
            )
    finally:
        journal.close()
        progress.finish("labelling")
    if connection_failures and connection_failures == len(pending) - outcome.not_sent:
        raise ModelError(
            f"the ground-truth model endpoint is unreachable ({endpoint.label})",
            hint="check --ground-truth-api-base / FACET_OPTIMIZER_GROUND_TRUTH_API_BASE and your network",
        )
    return outcome
