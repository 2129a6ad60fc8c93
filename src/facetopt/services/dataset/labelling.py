"""Ground-truth labelling with a content-hash cache: paid labels are never paid twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.clients.artifacts import JsonlJournal
from facetopt.clients.llm.chat_runs import run_chat_stream
from facetopt.clients.llm.client import (
    NOT_SENT_COST,
    ChatRequest,
    ChatResult,
    Endpoint,
    is_connection_error,
    make_chat_client,
    policy_stats,
)
from facetopt.clients.local.store import BatchWriter, LocalStore, StoreHold, write_labels
from facetopt.domain.spans import FacetCall
from facetopt.errors import ModelError
from facetopt.facets.decide.cost import EXPECTED_LABEL_TOKENS
from facetopt.facets.prompts.replies import read_value
from facetopt.services.cost import UsageMeter
from facetopt.services.progress import Progress, show_detail

if TYPE_CHECKING:
    from facetopt.clients.llm.chat_http import ChatClient

DETAIL_EVERY = 0.5  # seconds between updates of the progress line's rate / 429s / slow calls
# after each batch is taken, the event loop gets this long (seconds) to open connections and send
# before the next batch is made: sending needs several turns of the loop, making a batch none
SEND_GAP = 0.002


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
    batches: Iterable[list[FacetCall]],
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
    client: Future[ChatClient] | None = None,
    hold: StoreHold | None = None,
) -> LabelOutcome:
    """Label the calls of each batch (`[calls]` for one list; a sampler's batches as it selects them,
    so labelling starts on the first batch while the next are still being chosen)."""
    requests = ({call_key(c): label_request(c, endpoint, max_tokens) for c in batch} for batch in batches)
    return label_request_batches(
        requests,
        endpoint,
        store_path,
        journal_path,
        concurrency=concurrency,
        timeout=timeout,
        deadline=deadline,
        progress=progress,
        meter=meter,
        client=client,
        hold=hold,
    )


def start_client(
    endpoint: Endpoint, *, timeout: float, concurrency: int, deadline: float
) -> Future[ChatClient]:
    """Build the chat client in a thread (loading TLS certificates takes a few tenths of a second of
    Python that can overlap DuckDB's work and the sampling); `.result()` when the first call goes."""
    building = ThreadPoolExecutor(1, thread_name_prefix="chat-client")
    future = building.submit(
        make_chat_client, endpoint, timeout=timeout, concurrency=concurrency, deadline=deadline
    )
    building.shutdown(wait=False)
    return future


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
    """Answer `requests` (row key -> request) at once; see `label_request_batches`. Used by
    `dataset audit` (whose requests differ from the labeller's, so they share no cache entry)."""
    return label_request_batches(
        [requests],
        endpoint,
        store_path,
        journal_path,
        concurrency=concurrency,
        timeout=timeout,
        deadline=deadline,
        progress=progress,
        stage=stage,
        meter=meter,
    )


def label_request_batches(
    batches: Iterable[dict[str, ChatRequest]],
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
    client: Future[ChatClient] | None = None,
    hold: StoreHold | None = None,
) -> LabelOutcome:
    """Answer the requests (row key -> request) of each batch as the batches come: cached answers
    first, the rest paid for through the shared client, each answer committed to the label cache
    and the journal as it arrives. Identical requests share one call, across batches too.

    Taking the next batch may be slow (the sampler parses spans to make it): it happens in the event
    loop between sends, so the calls of the first batches are in flight meanwhile.

    `meter` counts the tokens each reply reports (cached answers are free) and, with a cost limit,
    leaves a request unsent once what is spent plus what is in flight would pass it. `hold` is
    started once every answer is in, before the last labels are committed (see StoreHold)."""
    # unused when every label is cached
    client = client or start_client(endpoint, timeout=timeout, concurrency=concurrency, deadline=deadline)
    run = _LabelRun(endpoint, store_path, journal_path, progress, stage, meter)
    try:
        asyncio.run(run.run(batches, client, concurrency))
        if hold is not None and run.writer is not None:  # the last labels go in the shared session
            hold.start()
    finally:
        run.close()
    outcome = run.outcome
    if run.writer is not None and run.writer.error is not None:
        outcome.store_error = (
            f"paid labels could not be cached in the local store ({run.writer.error}); "
            f"they are in {journal_path}"
        )
    if run.connection_failures and run.connection_failures == run.sent - run.not_sent:
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


class _LabelRun:
    """One labelling run: what each request's rows are (`owners`), what came back, the journal, the
    cache writer and the progress bar (started once the last batch is in, when the total is known)."""

    def __init__(
        self,
        endpoint: Endpoint,
        store_path: Path,
        journal_path: Path,
        progress: Progress,
        stage: str,
        meter: UsageMeter | None,
    ):
        self.endpoint, self.store_path, self.journal_path = endpoint, store_path, journal_path
        self.progress, self.stage, self.meter = progress, stage, meter
        self.outcome = LabelOutcome()
        self.owners: dict[str, list[str]] = {}  # request key -> the row keys it answers
        self.answers: dict[str, tuple[str | None, str | None]] = {}  # request key -> (label, failure)
        self.estimates: dict[str, float] = {}
        self.journal: JsonlJournal | None = None
        self.writer: BatchWriter | None = None
        self.asked = self.done = self.sent = 0  # rows asked about, rows answered, requests sent
        self.connection_failures = self.not_sent = 0
        self.showing = False
        self.shown = 0.0

    async def run(
        self, batches: Iterable[dict[str, ChatRequest]], client: Future[ChatClient], concurrency: int
    ) -> None:
        feed: asyncio.Queue[ChatRequest | None] = asyncio.Queue()
        sending: asyncio.Task | None = None
        try:
            with contextlib.ExitStack() as opened:
                store: LocalStore | None = None  # the label cache, opened once a batch holds a request
                for batch in batches:
                    if batch and store is None:
                        store = opened.enter_context(LocalStore(self.store_path))
                    added = self._take(batch, store) if store is not None else []
                    for request in added:
                        if sending is None:  # the first paid request: the client, journal and writer
                            sending = asyncio.create_task(self._send(client, feed, concurrency))
                        feed.put_nowait(request)
                    # let the workers send what this batch added
                    await asyncio.sleep(SEND_GAP if added else 0)
        except Exception:  # taking a batch failed: what is in flight still comes back and is kept,
            while not feed.empty():  # what was waiting for a worker is not sent
                feed.get_nowait()
            _end(feed, concurrency)
            if sending is not None:
                with contextlib.suppress(Exception):
                    await sending
            raise
        _end(feed, concurrency)
        if sending is not None:
            self._show_bar()
            await sending

    async def _send(self, client: Future[ChatClient], feed: asyncio.Queue, concurrency: int) -> None:
        chat = await asyncio.wrap_future(client)
        self.journal = JsonlJournal(self.journal_path)
        self.writer = BatchWriter(self.store_path, write_labels)
        try:
            await run_chat_stream(chat, feed, concurrency, self._on_result, self._admit)
        finally:
            await chat.close()

    def _take(self, batch: dict[str, ChatRequest], store: LocalStore) -> list[ChatRequest]:
        """The batch's requests still to send; cached answers, and answers this run already has or is
        waiting for, go to their rows without a call."""
        outcome = self.outcome
        unknown = [r.key for r in batch.values() if r.key not in self.owners]
        cached = store.cached_labels(list(dict.fromkeys(unknown)))
        new: list[ChatRequest] = []
        from_cache = 0
        for key, request in batch.items():
            self.asked += 1
            if request.key in self.owners:  # the same request as an earlier row's: it shares that call
                self.owners[request.key].append(key)
                if request.key in self.answers:
                    self._settle_row(key, *self.answers[request.key])
                continue
            if request.key in cached and (label := read_value(cached[request.key])).value is not None:
                outcome.labels[key] = label.value
                from_cache += 1
                continue
            self.owners[request.key] = [key]
            if self.meter is not None:
                self.estimates[request.key] = self.meter.estimate(request.messages, EXPECTED_LABEL_TOKENS)
            new.append(request)
        outcome.from_cache += from_cache
        if self.meter is not None:
            self.meter.cached(from_cache)
        self._advance(from_cache)
        self.sent += len(new)
        return new

    def _settle_row(self, key: str, label: str | None, failure: str | None) -> None:
        """A row whose request an earlier row's call already answered."""
        if label is not None:
            self.outcome.labels[key] = label
            self.outcome.paid += 1
        else:
            self.outcome.failures[key] = failure or "no answer"
            self.outcome.not_sent += failure == NOT_SENT_COST
        self._advance(1)

    def _admit(self, request: ChatRequest) -> bool:
        return self.meter is None or self.meter.admit(self.estimates[request.key])

    def _on_result(self, result: ChatResult) -> None:
        outcome, keys = self.outcome, self.owners[result.key]
        if self.meter is not None and result.error != NOT_SENT_COST:
            self.meter.settle(
                self.estimates[result.key], result.prompt_tokens, result.completion_tokens, bool(result.text)
            )
        # the label is the reply's value as a person reads it; an unreadable reply is a failure
        label = read_value(result.text) if result.text else None
        if label is not None and label.value is not None:
            assert self.writer is not None and self.journal is not None
            self.writer.put((result.key, label.value, self.endpoint.model, self.endpoint.label))
            self.journal.append({"cache_key": result.key, "rows": keys, "label": label.value})
            self.answers[result.key] = (label.value, None)
            for key in keys:
                outcome.labels[key] = label.value
            outcome.paid += len(keys)
            outcome.requests_paid += 1
        elif result.error == NOT_SENT_COST:
            self.not_sent += 1
            self.answers[result.key] = (None, NOT_SENT_COST)
            outcome.not_sent += len(keys)
            for key in keys:
                outcome.failures[key] = NOT_SENT_COST
        else:
            reason = result.error or f"unreadable reply: {label.reason if label else 'empty reply'}"
            self.answers[result.key] = (None, reason)
            self.connection_failures += is_connection_error(result)
            for key in keys:
                outcome.failures[key] = reason
        self._advance(len(keys))
        if (now := time.monotonic()) - self.shown >= DETAIL_EVERY and self.showing:
            self.shown = now
            stats = policy_stats(self.endpoint)
            if stats is not None:
                show_detail(self.progress, self.stage, stats.describe())

    def _show_bar(self) -> None:
        """The bar counts every row asked about, cached ones done at the start, so it agrees with the
        "N rows" the command announced; it starts once the last batch is in (the total is known)."""
        self.progress.start(self.stage, self.asked)
        self.showing = True
        if self.done:
            self.progress.advance(self.stage, self.done)

    def _advance(self, rows: int) -> None:
        self.done += rows
        if self.showing and rows:
            self.progress.advance(self.stage, rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.journal is not None:
            self.journal.close()
        if self.showing:
            self.progress.finish(self.stage)


def _end(feed: asyncio.Queue, workers: int) -> None:
    for _ in range(workers):
        feed.put_nowait(None)
