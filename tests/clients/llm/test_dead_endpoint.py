"""A live server that refuses every call ends the run (rate_limit.py, "Ends a dead endpoint").

The clock is shortened (DEAD_AFTER_SECONDS, the backoff) so the rules show in seconds; the
thresholds a user meets are the module's defaults (docs/models.md#a-dead-endpoint-ends-the-run).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from facetopt.clients.llm import rate_limit, transport
from facetopt.clients.llm.chat_runs import run_chat_requests
from facetopt.clients.llm.client import ChatResult, make_chat_client, policy_stats
from facetopt.errors import ModelError
from tests.clients.llm.test_client import KEY, endpoint_for, requests_for
from tests.fakes.openai_server import Failure, FakeOpenAIServer


@pytest.fixture(autouse=True)
def short_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limit, "DEAD_AFTER_SECONDS", 1.0)
    monkeypatch.setattr(transport, "_backoff", lambda attempt: 0.05)


def _run(server: FakeOpenAIServer, count: int, concurrency: int = 4, **client_args: object):
    endpoint = endpoint_for(server.url)
    delivered: list[ChatResult] = []
    client_args.setdefault("timeout", 10)
    client = make_chat_client(endpoint, concurrency=concurrency, **client_args)  # type: ignore[arg-type]
    requests = requests_for(endpoint, count)
    error: ModelError | None = None
    start = time.perf_counter()
    try:
        asyncio.run(run_chat_requests(client, requests, concurrency, delivered.append))
    except ModelError as exc:
        error = exc
    return error, delivered, time.perf_counter() - start, endpoint


def test_500_to_everything_ends_the_run_naming_endpoint_status_and_message() -> None:
    with FakeOpenAIServer(fail_when=lambda body: Failure(500, message="deployment missing")) as server:
        error, delivered, seconds, _ = _run(server, 200)
        sent = server.count
    assert error is not None, "the run went on against a dead endpoint"
    assert seconds < 8
    assert server.url in error.message and "HTTP 500" in error.message
    assert "deployment missing" in error.message and "no call has succeeded" in error.message
    assert "nothing more was sent" in (error.hint or "")
    # every request was handed back (the caller keeps its books); most were never sent
    assert len(delivered) == 200 and all(not r.ok for r in delivered)
    unsent = [r for r in delivered if r.attempts == 0]
    assert len(unsent) >= 150 and sent < 200  # 1 s at 4 in flight, 0.05 s backoff: under ~100 sends
    assert all(r.error and r.error.startswith("endpoint dead: ") for r in unsent)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_4xx_to_every_call_of_the_first_batch_ends_the_run_at_once(status: int) -> None:
    with FakeOpenAIServer(fail_when=lambda body: Failure(status, message=f"nope {status}")) as server:
        error, delivered, seconds, _ = _run(server, 100, concurrency=4)
        sent = server.count
    assert error is not None and f"HTTP {status}: nope {status}" in error.message
    assert seconds < 5
    # 4xx are not retried: the verdict comes after DEAD_AFTER_REFUSALS answers, plus what was in flight
    assert sent <= rate_limit.DEAD_AFTER_REFUSALS + 4
    assert len(delivered) == 100


def test_successes_then_a_dead_phase_end_the_run_and_keep_what_was_paid() -> None:
    calls = itertools.count()
    lock = threading.Lock()

    def dies_after_ten(body: dict) -> Failure | None:
        with lock:
            n = next(calls)
        return Failure(503, message="upstream gone") if n >= 10 else None

    with FakeOpenAIServer(fail_when=dies_after_ten) as server:
        error, delivered, seconds, _ = _run(server, 300, concurrency=2)
    assert error is not None and "HTTP 503: upstream gone" in error.message
    assert "no call has succeeded" not in error.message
    paid = [r for r in delivered if r.ok]
    assert len(paid) == 10 and len(delivered) == 300  # every paid reply reached the caller
    assert seconds < 8


def test_a_transient_burst_of_5xx_then_success_does_not_end_the_run() -> None:
    # 12 refusals in a row (more than DEAD_AFTER_REFUSALS) over far less than DEAD_AFTER_SECONDS
    script = [Failure(500)] * 12
    with FakeOpenAIServer(script=script) as server:
        error, delivered, _, _ = _run(server, 20, concurrency=2)
        failures = server.failures_sent
    assert failures == 12
    assert error is None
    assert len(delivered) == 20 and all(r.ok for r in delivered), [r.error for r in delivered if not r.ok]


def test_429_storms_keep_their_patience(monkeypatch: pytest.MonkeyPatch) -> None:
    # refused with Retry-After for longer than the dead-endpoint window: still every call succeeds
    with FakeOpenAIServer(storm=1.5, latency=0.01) as server:
        error, delivered, seconds, _ = _run(server, 12, concurrency=4)
        throttled = server.throttled
    assert error is None and throttled >= 4 and seconds >= 1.4
    assert all(r.ok for r in delivered)


def test_the_run_is_bounded_as_a_whole_not_per_queued_call() -> None:
    # a storm that never ends: each of 40 queued calls used to get a fresh 1 s deadline (40 s at one
    # in flight); the run stops retrying once it had no success for 1 s
    with FakeOpenAIServer(storm=600.0) as server:
        error, delivered, seconds, endpoint = _run(server, 40, concurrency=1, deadline=1.0)
    assert error is None  # throttled, not refused: the calls fail, the run reports them
    assert seconds < 6, seconds
    assert all(not r.ok and r.error and "per-call deadline" in r.error for r in delivered)
    stats = policy_stats(endpoint)
    assert stats is not None and stats.retries > 0 and "without a success" in stats.describe()


def test_the_key_echoed_by_a_dead_server_is_scrubbed() -> None:
    with FakeOpenAIServer(fail_when=lambda body: Failure(401, message=f"invalid key {KEY}")) as server:
        error, delivered, _, _ = _run(server, 30)
    assert error is not None and "HTTP 401" in error.message
    assert KEY not in error.message and "***" in error.message
    assert all(KEY not in (r.error or "") for r in delivered)


def test_after_successes_a_row_s_own_400s_fail_rows_but_a_refused_key_ends_the_run() -> None:
    def bad_rows(body: dict) -> Failure | None:
        return Failure(400, message="context too long") if "order 1" in str(body["messages"]) else None

    # 1 success, then 10 rows of the "order 1x" family refused with 400: a row's own fault
    with FakeOpenAIServer(fail_when=bad_rows) as server:
        error, delivered, _, _ = _run(server, 20, concurrency=1)
    assert error is None
    assert sum(not r.ok for r in delivered) == 11 and all(r.attempts == 1 for r in delivered)

    calls = itertools.count()
    lock = threading.Lock()

    def revoked_after_two(body: dict) -> Failure | None:
        with lock:
            return Failure(401, message="key revoked") if next(calls) >= 2 else None

    with FakeOpenAIServer(fail_when=revoked_after_two) as server:
        error, delivered, _, _ = _run(server, 40, concurrency=1)
        sent = server.count
    assert error is not None and "HTTP 401: key revoked" in error.message
    assert sent == 2 + rate_limit.DEAD_AFTER_REFUSALS
