"""The rate-limit policy through the loopback fake: 429 storms, a capped endpoint, deadlines."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest

from facetopt.clients.llm.client import make_async_client, policy_for, policy_stats
from facetopt.clients.llm.rate_limit import header_rate, retry_after
from tests.clients.llm.test_client import endpoint_for, requests_for, run
from tests.fakes.openai_server import FakeOpenAIServer


def test_a_429_storm_ends_with_every_row_labelled() -> None:
    with FakeOpenAIServer(storm=1.0, latency=0.01) as server:
        endpoint = endpoint_for(server.url)
        results, delivered = run(endpoint, requests_for(endpoint, 24), concurrency=8)
        throttled = server.throttled
    assert [r.error for r in results if not r.ok] == []
    assert len(delivered) == 24 and throttled >= 8
    assert all(r.attempts >= 2 for r in results[:8])  # the first wave was refused, then retried
    stats = policy_stats(endpoint)
    assert stats is not None and stats.throttled == throttled and stats.in_flight == 0


def test_a_capped_endpoint_is_paced_to_its_cap_without_a_flood_of_429s() -> None:
    cap = 40.0
    with FakeOpenAIServer(rate_cap=cap, latency=0.02) as server:
        endpoint = endpoint_for(server.url)
        results, _ = run(endpoint, requests_for(endpoint, 70), concurrency=32)
        throttled = server.throttled
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    # a client that keeps 32 in flight and retries blindly is refused several times per call
    assert throttled < 35
    rate = policy_for(endpoint.label, endpoint.model).rate
    assert rate is None or 0.4 * cap <= rate <= 1.5 * cap  # None: the burst allowance sufficed


def test_rate_headers_give_the_allowed_rate() -> None:
    with FakeOpenAIServer(rate_cap=6.0, burst=1, rate_headers=True) as server:
        endpoint = endpoint_for(server.url)
        results, _ = run(endpoint, requests_for(endpoint, 12), concurrency=12)
        throttled = server.throttled
    assert all(r.ok for r in results) and throttled > 0
    rate = policy_for(endpoint.label, endpoint.model).rate
    assert rate is not None and 6.0 <= rate <= 6.0 * 1.6  # learned from the header, then grown


def test_a_call_still_refused_at_its_deadline_fails_with_a_clear_reason() -> None:
    with FakeOpenAIServer(storm=30.0) as server:
        endpoint = endpoint_for(server.url)
        start = time.perf_counter()
        results, _ = run(endpoint, requests_for(endpoint, 2), deadline=1.5)
        assert time.perf_counter() - start < 5
    assert all(r.error and "per-call deadline" in r.error for r in results), [r.error for r in results]


def test_autoevals_does_not_retry_429s_behind_the_policy() -> None:
    from autoevals import Factuality
    from autoevals.oai import LLMClient

    with FakeOpenAIServer(storm=30.0) as server:
        endpoint = endpoint_for(server.url)
        client = make_async_client(endpoint, timeout=5, deadline=1.0)
        factuality = Factuality(model="gpt-5.4", client=LLMClient(openai=client, is_async=True))
        start = time.perf_counter()
        with pytest.raises(Exception) as failure:
            asyncio.run(factuality.eval_async(input="q", output="NONE", expected="No match"))
        elapsed = time.perf_counter() - start
        sent = server.count
    assert elapsed < 5 and "RateLimitError" not in type(failure.value).__name__
    assert "deadline" in str(failure.value.__cause__ or failure.value)
    assert sent <= 4  # the policy's retries within one second; autoevals' own 100 never ran


def test_retry_after_and_rate_headers_are_read() -> None:
    assert retry_after(httpx2.Headers({"retry-after-ms": "250", "retry-after": "1"})) == 0.25
    assert retry_after(httpx2.Headers({"retry-after": "2"})) == 2.0
    assert retry_after(httpx2.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 1.0
    assert retry_after(httpx2.Headers({})) is None
    assert header_rate(httpx2.Headers({"x-ratelimit-limit-requests": "3000"})) == 50.0
