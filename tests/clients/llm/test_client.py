"""run_chat_requests against a loopback OpenAI-compatible fake: retries, no lost results, no leaked key."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx2
import pytest
from pydantic import SecretStr

from facetopt.clients.llm.chat_runs import run_chat_requests
from facetopt.clients.llm.client import (
    ChatRequest,
    ChatResult,
    Endpoint,
    endpoint_unreachable,
    make_chat_client,
    probe_endpoint,
)
from facetopt.simulation.labeller import labeller_reply
from tests.fakes.openai_server import Failure, FakeOpenAIServer

KEY = "sk-test-SECRET-4f9a2c"
PROMPT = "Classify the user's sentiment as Negative, Neutral, Positive or Mixed."


def endpoint_for(url: str, model: str = "gpt-5.4") -> Endpoint:
    return Endpoint("labeller", model, url, SecretStr(KEY))


def requests_for(endpoint: Endpoint, count: int, **params: object) -> list[ChatRequest]:
    return [
        ChatRequest.build(
            endpoint,
            [
                {
                    "role": "user",
                    "content": f"Here is the data to analyze:\nUser: order {i} arrived, thanks!",
                },
                {"role": "user", "content": PROMPT},
            ],
            **params,
        )
        for i in range(count)
    ]


def run(
    endpoint: Endpoint, requests: list[ChatRequest], concurrency: int = 4, **client_args: object
) -> tuple[list[ChatResult], list[ChatResult]]:
    delivered: list[ChatResult] = []
    client_args.setdefault("timeout", 10)
    client = make_chat_client(endpoint, concurrency=concurrency, **client_args)  # type: ignore[arg-type]
    results = asyncio.run(run_chat_requests(client, requests, concurrency, delivered.append))
    return results, delivered


def test_429_and_500_are_retried_and_no_result_is_lost() -> None:
    script = [Failure(429, retry_after="0.05")] * 6 + [Failure(500, retry_after="0.05")] * 4
    with FakeOpenAIServer(script=script) as server:
        endpoint = endpoint_for(server.url)
        requests = requests_for(endpoint, 20, max_tokens=512)
        results, delivered = run(endpoint, requests, max_retries=6)
        assert server.count == 20 + len(script) and server.failures_sent == len(script)
    assert [r.key for r in results] == [r.key for r in requests]
    # the fake answers as the simulated labeller does, planted mistakes included (docs/models.md)
    answers = [labeller_reply(f"User: order {i} arrived, thanks!", PROMPT) for i in range(20)]
    assert [r.text for r in results] == answers, [r.error for r in results]
    assert all(a.startswith(("Positive - ", "Neutral - ")) for a in answers)
    assert sorted(r.key for r in delivered) == sorted(r.key for r in requests)  # once each, none lost
    assert sum(r.attempts for r in results) == 20 + len(script)


def test_retry_after_is_honoured() -> None:
    with FakeOpenAIServer(script=[Failure(429, retry_after="1")]) as server:
        endpoint = endpoint_for(server.url)
        start = time.perf_counter()
        results, _ = run(endpoint, requests_for(endpoint, 1), max_retries=2)
        elapsed = time.perf_counter() - start
    assert results[0].ok and results[0].attempts == 2
    assert 0.9 <= elapsed < 5


def test_a_row_that_keeps_failing_is_an_error_result_not_an_exception() -> None:
    def fail_order_3(body: dict) -> Failure | None:
        return Failure(500, retry_after="0.01") if "order 3 " in str(body["messages"]) else None

    with FakeOpenAIServer(fail_when=fail_order_3) as server:
        endpoint = endpoint_for(server.url)
        results, delivered = run(endpoint, requests_for(endpoint, 6), max_retries=2)
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert (
        results[3].error is not None and results[3].error.startswith("HTTP 500") and results[3].attempts == 3
    )
    assert len(delivered) == 6


def test_timeout_becomes_an_error_result() -> None:
    with FakeOpenAIServer(latency=3.0) as server:
        endpoint = endpoint_for(server.url)
        start = time.perf_counter()
        results, _ = run(endpoint, requests_for(endpoint, 2), timeout=0.3, max_retries=0)
        assert time.perf_counter() - start < 2.5
    assert all(r.error is not None and r.error.startswith("timeout") for r in results)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_gives_errors_and_stops_sending() -> None:
    endpoint = endpoint_for(f"http://127.0.0.1:{_unused_port()}/v1")
    results, delivered = run(endpoint, requests_for(endpoint, 40), concurrency=2, max_retries=0)
    assert len(results) == len(delivered) == 40
    assert endpoint_unreachable(results)
    assert all(r.error and r.error.startswith("connection error") for r in results)
    assert sum(r.attempts == 0 for r in results) >= 30  # not sent once the endpoint proved unreachable
    assert asyncio.run(probe_endpoint(endpoint, timeout=2)) is not None


def test_the_key_is_sent_but_never_appears_in_results_or_errors() -> None:
    def echo_key(body: dict) -> Failure:
        return Failure(400, message=f"Incorrect API key provided: {KEY}")

    with FakeOpenAIServer(api_key=KEY) as server:
        endpoint = endpoint_for(server.url)
        results, _ = run(endpoint, requests_for(endpoint, 3))
        assert {r.authorization for r in server.requests} == {f"Bearer {KEY}"}
    with FakeOpenAIServer(api_key="sk-some-other-key") as server:
        wrong, _ = run(endpoint_for(server.url), requests_for(endpoint, 1))
    with FakeOpenAIServer(fail_when=echo_key) as server:
        echoed, _ = run(endpoint_for(server.url), requests_for(endpoint, 1))
    assert all(r.ok for r in results)
    assert wrong[0].error is not None and wrong[0].error.startswith("HTTP 401")
    assert echoed[0].error is not None and "***" in echoed[0].error
    assert KEY not in " ".join(repr(r) + str(r.error) for r in results + wrong + echoed)


def test_empty_reply_is_an_error_and_think_blocks_are_stripped() -> None:
    replies = iter(["", "<think>the user is happy</think>\nPositive - thanks"])
    with FakeOpenAIServer(reply=lambda body: next(replies)) as server:
        endpoint = endpoint_for(server.url)
        results, _ = run(endpoint, requests_for(endpoint, 2), concurrency=1)
    assert results[0].error == "empty reply"
    assert results[1].text == "Positive - thanks"


def test_extra_body_and_token_limits_reach_the_server_as_the_api_expects() -> None:
    suffix = [[{"role": "user", "content": PROMPT}]]
    with FakeOpenAIServer() as server:
        facet = endpoint_for(server.url, model="brain-facet-1")
        run(facet, requests_for(facet, 1, max_tokens=20000, extra_body={"suffix_messages": suffix}))
        labeller = endpoint_for(server.url)
        run(labeller, requests_for(labeller, 1, max_tokens=512))
        facet_body, labeller_body = (r.body for r in server.requests)
    assert facet_body["suffix_messages"] == suffix and facet_body["max_tokens"] == 20000
    assert labeller_body["max_completion_tokens"] == 512 and "max_tokens" not in labeller_body


@pytest.mark.slow
def test_concurrency_bounds_requests_in_flight_and_the_pool_allows_more_than_100() -> None:
    with FakeOpenAIServer(latency=0.05) as server:
        endpoint = endpoint_for(server.url)
        run(endpoint, requests_for(endpoint, 30), concurrency=5)
        assert server.max_in_flight == 5
    # Every request is held until 101 are in flight (8 s at most), so a slow machine cannot make
    # this pass or fail by how fast it starts connections.
    with FakeOpenAIServer(latency=8, gather=101) as server:
        endpoint = endpoint_for(server.url)
        results, _ = run(endpoint, requests_for(endpoint, 120), concurrency=120)
        assert all(r.ok for r in results)
        assert server.max_in_flight > 100  # httpx-style default pools stop at 100 connections


def test_an_exception_in_on_result_stops_the_run() -> None:
    def explode(result: ChatResult) -> None:
        raise RuntimeError("store is gone")

    with FakeOpenAIServer() as server:
        endpoint = endpoint_for(server.url)
        client = make_chat_client(endpoint, timeout=10)
        with pytest.raises(RuntimeError, match="store is gone"):
            asyncio.run(run_chat_requests(client, requests_for(endpoint, 5), 2, explode))


@pytest.mark.slow
def test_factuality_reaches_the_fake_on_the_chat_and_responses_paths() -> None:
    import openai
    from autoevals import Factuality

    async def score(url: str, model: str) -> float | None:
        client = openai.AsyncOpenAI(base_url=url, api_key=KEY)
        return (
            await Factuality(model=model, client=client).eval_async(
                input="t", output="NONE", expected="No match"
            )
        ).score

    with FakeOpenAIServer() as server:
        assert asyncio.run(score(server.url, "gpt-5.4")) == 1
        assert asyncio.run(score(server.url, "gpt-4o")) == 1
        assert [r.path for r in server.requests] == ["/v1/responses", "/v1/chat/completions"]


def test_fake_rejects_what_the_real_api_rejects() -> None:
    with FakeOpenAIServer() as server, httpx2.Client() as http:
        body = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}
        assert http.post(f"{server.url}/chat/completions", json=body).status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        assert (
            http.post(f"{server.url}/chat/completions", json={"model": "gpt-5.4"}, headers=auth).status_code
            == 400
        )
        assert (
            http.post(f"{server.url}/responses", json={"model": "gpt-5.4"}, headers=auth).status_code == 400
        )
        assert http.post(f"{server.url}/chat/completions", json=body, headers=auth).status_code == 200


@pytest.mark.parametrize("text", ['{"issue": "the reply ignored the question"}', '["NONE"]', "NONE"])
def test_a_reply_that_looks_like_json_comes_back_as_the_models_words(text: str) -> None:
    with FakeOpenAIServer(reply=lambda body: text) as server:
        endpoint = endpoint_for(server.url)
        (result,), _ = run(endpoint, requests_for(endpoint, 1))
    assert result.ok and result.text == text
