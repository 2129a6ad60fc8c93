"""A loopback OpenAI-compatible server for tests and benchmarks.

    with FakeOpenAIServer(latency=0.05, script=[Failure(429, retry_after="0")] * 3) as server:
        client = AsyncOpenAI(base_url=server.url, api_key="sk-test")
        ...
        assert server.count == ...

- `POST /v1/chat/completions` and `POST /v1/responses` answer like the real API. Replies come from
  the same deterministic logic as the in-process simulation (`facetopt.simulation.transport`), or
  from `reply(body) -> str` when given (chat content; the judge's `select_choice` stays simulated);
  `reply` may return `(text, finish_reason)`, e.g. `(text, "length")` for a reply cut at the limit.
- It rejects what the real API rejects: no `Authorization: Bearer ...` (or the wrong key when
  `api_key` is set; `accept_basic` also takes `Basic ...`) -> 401; a body without `model` and `messages` (`input` for /responses) -> 400.
- `script`: the first len(script) requests, in arrival order, get the scripted failure instead.
  `fail_when(body) -> Failure | None` injects failures by content (e.g. one row always 500).
- `usage(body, reply) -> (prompt, completion)` sets the reply's token usage (default: the
  simulation's count).
- `rate_cap`: requests per second admitted (a token bucket holding `burst` tokens, default one
  second's worth); above it the reply is at once 429 with `Retry-After` in whole seconds, as a
  real provider answers, plus `x-ratelimit-limit-requests` (per minute) etc. when `rate_headers`.
  `storm`: for that many seconds from the first request, every request is refused that way.
  `throttled` counts the 429s sent.
- `latency` seconds of sleep per request (interrupted at shutdown); `request_queue_size` is 1024
  so a burst of 128 connections is not reset (socketserver's default backlog is 5).
- `gather`: with it, `latency` is a most: each request waits until `gather` requests are in flight
  at once (then all go on at once), so a test of concurrency does not hang on how fast a busy
  machine starts threads.
- Every request is recorded (path, headers including Authorization, JSON body) under a lock.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from facetopt.simulation.transport import simulate
from tests.fakes.http_base import JsonHandler, LoopbackServer


@dataclass(frozen=True)
class Failure:
    status: int = 500
    retry_after: str | None = None  # the Retry-After header, e.g. "0" or "1"
    message: str = "injected failure"


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def authorization(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RecordedRequest] = field(default_factory=list)
    failures_sent: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    throttled: int = 0
    tokens: float = 0.0
    refilled: float = 0.0
    first: float | None = None


_Server = LoopbackServer  # bench/bench_eval.py builds its own server from this and _handler_for


class FakeOpenAIServer:
    def __init__(
        self,
        latency: float = 0.0,
        script: Sequence[Failure] = (),
        reply: Callable[[dict], str | tuple[str, str]] | None = None,
        fail_when: Callable[[dict], Failure | None] | None = None,
        api_key: str | None = None,
        usage: Callable[[dict, str], tuple[int, int]] | None = None,
        rate_cap: float | None = None,
        burst: float | None = None,
        storm: float = 0.0,
        rate_headers: bool = False,
        gather: int = 0,
        accept_basic: bool = False,
    ):
        self.accept_basic = accept_basic  # a gateway behind basic auth (credentials in the base URL)
        self.usage = usage  # (body, reply text) -> (prompt tokens, completion tokens) in chat replies
        self.gather = gather
        self._gathered = threading.Event()
        self.rate_cap, self.storm, self.rate_headers = rate_cap, storm, rate_headers
        self.burst = burst if burst is not None else (rate_cap or 0.0)
        self.latency = latency
        self.script = list(script)
        self.reply = reply
        self.fail_when = fail_when
        self.api_key = api_key
        self._state = _State()
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAIServer:
        self._server = LoopbackServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None, "use FakeOpenAIServer as a context manager"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- what happened -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def count(self) -> int:
        with self._state.lock:
            return len(self._state.requests)

    @property
    def failures_sent(self) -> int:
        with self._state.lock:
            return self._state.failures_sent

    @property
    def throttled(self) -> int:
        with self._state.lock:
            return self._state.throttled

    @property
    def max_in_flight(self) -> int:
        with self._state.lock:
            return self._state.max_in_flight

    # -- serving -----------------------------------------------------------------------------------

    def _admit(self, record: RecordedRequest) -> Failure | None:
        """Record a request; the scripted failure for its arrival position, if any."""
        with self._state.lock:
            position = len(self._state.requests)
            self._state.requests.append(record)
            self._state.in_flight += 1
            self._state.max_in_flight = max(self._state.max_in_flight, self._state.in_flight)
            if self.gather and self._state.in_flight >= self.gather:
                self._gathered.set()
            failure = self.script[position] if position < len(self.script) else None
            if failure is not None:
                self._state.failures_sent += 1
            return failure

    def _refusal(self) -> tuple[int, dict, dict[str, str]] | None:
        """A 429 when the storm is on or the token bucket is empty; else take a token."""
        if self.rate_cap is None and not self.storm:
            return None
        now = time.monotonic()
        with self._state.lock:
            state = self._state
            if state.first is None:
                state.first, state.refilled, state.tokens = now, now, self.burst
            wait = 0.0
            if now - state.first < self.storm:
                wait = self.storm - (now - state.first)
            elif self.rate_cap is not None:
                state.tokens = min(self.burst, state.tokens + (now - state.refilled) * self.rate_cap)
                state.refilled = now
                if state.tokens >= 1:
                    state.tokens -= 1
                else:
                    wait = (1 - state.tokens) / self.rate_cap
            if not wait:
                return None
            state.throttled += 1
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        if self.rate_headers and self.rate_cap:
            headers.update(
                {
                    "x-ratelimit-limit-requests": str(round(self.rate_cap * 60)),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{math.ceil(wait * 1000)}ms",
                }
            )
        return 429, _error("Rate limit reached for requests", "rate_limit_error"), headers

    def _done(self, failed: bool) -> None:
        with self._state.lock:
            self._state.in_flight -= 1
            if failed:
                self._state.failures_sent += 1

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict[str, str]]:
        """(status, JSON body, extra headers) for one request."""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        record = RecordedRequest(path, headers, body)
        failure = self._admit(record)
        injected_by_content = False
        try:
            if failure is None and (refused := self._refusal()) is not None:
                return refused
            if self.gather:
                self._gathered.wait(self.latency)
            elif self.latency and self._stopping.wait(self.latency):
                return 503, _error("server shutting down", "server_error"), {}
            auth = record.authorization or ""
            if self.accept_basic and auth.startswith("Basic "):
                pass
            elif not auth.startswith("Bearer ") or not auth[7:].strip():
                return 401, _error("You didn't provide an API key.", "invalid_request_error"), {}
            if self.api_key is not None and auth[7:] != self.api_key:
                return 401, _error("Incorrect API key provided.", "invalid_request_error"), {}
            if failure is None and self.fail_when is not None and isinstance(body, dict):
                failure = self.fail_when(body)
                injected_by_content = failure is not None
            if failure is not None:
                extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                kind = "rate_limit_error" if failure.status == 429 else "server_error"
                return failure.status, _error(failure.message, kind), extra
            status, payload = simulate("POST", path, body)  # also validates the body like the real API
            if status == 200 and self.reply is not None and path.endswith("/chat/completions"):
                message = payload["choices"][0]["message"]
                if not message.get("tool_calls"):
                    content = self.reply(body)
                    if isinstance(content, tuple):  # (text, finish_reason): e.g. a reply cut at the limit
                        content, payload["choices"][0]["finish_reason"] = content
                    message["content"] = content
            if status == 200 and self.usage is not None and path.endswith("/chat/completions"):
                message = payload["choices"][0]["message"]
                prompt, completion = self.usage(body, str(message.get("content") or ""))
                payload["usage"] = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
            return status, payload, {}
        finally:
            self._done(failed=injected_by_content)


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _handler_for(fake: FakeOpenAIServer) -> type[JsonHandler]:
    class Handler(JsonHandler):
        disable_nagle_algorithm = True  # head and body go out as separate writes

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_json(*fake.answer(self.path, dict(self.headers.items()), self.read_body()))

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
