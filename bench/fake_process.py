"""A timed fake OpenAI-compatible server in its own process, shared by the benchmarks.

In its own process the fake has its own interpreter lock (and core), so the client under test is
what gets measured. It records when the first request arrived and the last reply was ready.
"""

from __future__ import annotations

import math
import threading
import time

from tests.fakes.openai_server import FakeOpenAIServer


class TimedFake(FakeOpenAIServer):
    first = math.inf
    last = 0.0
    _clock_lock = threading.Lock()  # handler threads update first/last concurrently

    def answer(self, path, headers, raw):  # type: ignore[override]
        with self._clock_lock:
            self.first = min(self.first, time.monotonic())
        try:
            return super().answer(path, headers, raw)
        finally:
            with self._clock_lock:
                self.last = max(self.last, time.monotonic())


def _serve(latency: float, api_key: str | None, options: dict, conn) -> None:
    with TimedFake(latency=latency, api_key=api_key, **options) as server:
        conn.send(server.url)
        wanted = conn.recv()  # "stop", or "stop+messages": also the chat messages received
        received = [r.body.get("messages") for r in server.requests if isinstance(r.body, dict)]
        stats = (server.first, server.last, server.count, server.max_in_flight, server.throttled)
        conn.send((*stats, received if wanted == "stop+messages" else None))


class FakeProcess:
    """`with FakeProcess(latency) as fake:` -> fake.url; afterwards first, last, phase, count, peak,
    throttled (429s sent). `options` go to the fake (e.g. rate_cap=50.0 for a token bucket)."""

    def __init__(
        self, latency: float, api_key: str | None = None, keep_messages: bool = False, **options: object
    ):
        self.latency, self.api_key, self.options = latency, api_key, options
        self.keep_messages = keep_messages  # then afterwards `messages`: each request's chat messages

    def __enter__(self) -> FakeProcess:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(self.latency, self.api_key, self.options, child), daemon=True
        )
        self._process.start()
        self.url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop+messages" if self.keep_messages else "stop")
        self.first, self.last, self.count, self.peak, self.throttled, self.messages = self._conn.recv()
        self.phase = self.last - self.first
        self._process.join(10)
