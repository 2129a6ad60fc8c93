"""Ground-truth labelling with a content-hash cache: paid labels are never paid twice."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from facetopt.clients.artifacts import JsonlJournal
from facetopt.clients.llm.client import (
    NOT_SENT_COST,
    ChatRequest,
    ChatResult,
    Endpoint,
    is_connection_error,
    make_chat_client,
    policy_stats,
    run_chat_requests,
)
from facetopt.clients.local.store import BatchWriter, LocalStore, write_labels
from facetopt.domain.spans import FacetCall
from facetopt.errors import ModelError
from facetopt.facets.decide.cost import EXPECTED_LABEL_TOKENS
from facetopt.facets.prompts.replies import read_value
from facetopt.services.cost import UsageMeter
from facetopt.services.progress import Progress, show_detail

DETAIL_EVERY = 0.5  # seconds between updates of the progress line's rate / 429s / slow calls


@dataclass
class LabelOutcome:
    labels: dict[str, str] = field(default_factory=dict)  # call key -> label
    failures: dict[str, str] = field(default_factory=dict)  # call key -> reason
    # every count is in calls (dataset rows), so calls = from_cache + paid + len(failures);
    # identical calls share one request, so requests_paid (what was bought) can be fewer than paid
    from_cache: int = 0
    paid: int = 0
    requests_paid: int = 0
    not_sent: int = 0  # calls left unsent by --max-cost (they are in failures too)
    store_error: str | None = None  # paid labels that could not be cached (they are in the journal)


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
    store_path: Path,
    journal_path: Path,
    *,
    concurrency: int,
    max_tokens: int,
    timeout: float,
    deadline: float,
    progress: Progress,
    meter: UsageMeter | None = None,
) -> LabelOutcome:
    requests = {call_key(c): label_request(c, endpoint, max_tokens) for c in calls}
    return label_requests(
        requests,
        endpoint,
        store_path,
        journal_path,
        concurrency=concurrency,
        timeout=timeout,
        deadline=deadline,
        progress=progress,
        meter=meter,
    )


def label_requests(
    requests: dict[str, ChatRequest],
    endpoint: Endpoint,
    store_path: Path,
    journal_path: Path,
    *,
    concurrency: int,
    timeout: float,
    deadline: float,
    progress: Progress,
    stage: str = "labelling",
    meter: UsageMeter | None = None,
) -> LabelOutcome:
    """Answer `requests` (row key -> request): cached answers first, the rest paid for through the
    shared client, each answer committed to the label cache and the journal as it arrives. Used by
    `dataset create` and by `dataset audit` (whose requests differ, so they share no cache entry).

    `meter` counts the tokens each reply reports (cached answers are free) and, with a cost limit,
    leaves a request unsent once what is spent plus what is in flight would pass it."""
    # the store is opened only for short transactions: one read of the cache here, then a
    # background writer commits paid labels in batches as they arrive
    outcome = LabelOutcome()
    # building the client (loading TLS certificates) takes a few tenths of a second of Python that
    # overlaps DuckDB opening the store and reading the cache; unused when every label is cached
    building = ThreadPoolExecutor(1, thread_name_prefix="chat-client")
    client_future = building.submit(
        make_chat_client, endpoint, timeout=timeout, concurrency=concurrency, deadline=deadline
    )
    building.shutdown(wait=False)
    with LocalStore(store_path) as store:
        cached = store.cached_labels([r.key for r in requests.values()])
    pending: list[ChatRequest] = []
    owners: dict[str, list[str]] = {}
    for key, request in requests.items():
        if request.key in cached and (label := read_value(cached[request.key])).value is not None:
            outcome.labels[key] = label.value
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

    # the bar counts every row asked about, cached ones done at the start, so it agrees with
    # the "N rows" the command announced
    progress.start(stage, len(requests))
    if outcome.from_cache:
        progress.advance(stage, outcome.from_cache)
    journal = JsonlJournal(journal_path)
    writer = BatchWriter(store_path, write_labels)
    connection_failures = not_sent = 0
    shown = 0.0
    try:

        def on_result(result: ChatResult) -> None:
            nonlocal connection_failures, not_sent, shown
            keys = owners[result.key]
            if meter is not None and result.error != NOT_SENT_COST:
                meter.settle(
                    estimates[result.key], result.prompt_tokens, result.completion_tokens, bool(result.text)
                )
            # the label is the reply's value as a person reads it; an unreadable reply is a failure
            label = read_value(result.text) if result.text else None
            if label is not None and label.value is not None:
                writer.put((result.key, label.value, endpoint.model, endpoint.label))
                journal.append({"cache_key": result.key, "rows": keys, "label": label.value})
                for key in keys:
                    outcome.labels[key] = label.value
                outcome.paid += len(keys)
                outcome.requests_paid += 1
            elif result.error == NOT_SENT_COST:
                not_sent += 1
                outcome.not_sent += len(keys)
                for key in keys:
                    outcome.failures[key] = NOT_SENT_COST
            else:
                reason = result.error or f"unreadable reply: {label.reason if label else 'empty reply'}"
                connection_failures += is_connection_error(result)
                for key in keys:
                    outcome.failures[key] = reason
            progress.advance(stage, len(keys))
            if (now := time.monotonic()) - shown >= DETAIL_EVERY:
                shown = now
                stats = policy_stats(endpoint)
                if stats is not None:
                    show_detail(progress, stage, stats.describe())

        client = client_future.result()
        asyncio.run(
            run_chat_requests(client, pending, concurrency=concurrency, on_result=on_result, admit=admit)
        )
    finally:
        writer.close()
        journal.close()
        progress.finish(stage)
    if writer.error is not None:
        outcome.store_error = (
            f"paid labels could not be cached in the local store ({writer.error}); they are in {journal_path}"
        )
    if connection_failures and connection_failures == len(pending) - not_sent:
        flag = (
            "--audit-api-base / FACET_OPTIMIZER_AUDIT_API_BASE"
            if endpoint.role == "auditor"
            else ("--ground-truth-api-base / FACET_OPTIMIZER_GROUND_TRUTH_API_BASE")
        )
        raise ModelError(
            f"the {'audit' if endpoint.role == 'auditor' else 'ground-truth'} model endpoint is unreachable "
            f"({endpoint.label})",
            hint=f"check {flag} and your network",
        )
    return outcome
