"""Labelling throughput: facetopt's `run_chat_requests` against a bare client on the same loopback fake.

    python bench/bench_labelling.py                      # N=1000, C=128, L=1.0 s (reference/performance.md)
    python bench/bench_labelling.py --n 200 --latency 0.2

Prints, for each client, the wall time, the floor ceil(N/C) x L, the ratio to the floor and the
ratio to the bare client measured in the same run. Target: ours within 1.05x of the bare client.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import httpx2  # noqa: E402
from fake_process import FakeProcess  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402

from facetopt.clients.llm.chat_runs import run_chat_requests  # noqa: E402
from facetopt.clients.llm.client import ChatRequest, Endpoint, make_chat_client  # noqa: E402

KEY = "sk-bench-not-a-real-key"


def _messages(i: int) -> list[dict]:
    trace = (
        f"User: Can you help me track order {i}?\nAssistant: Your order {i} ships tomorrow.\nUser: Thanks!"
    )
    return [
        {"role": "user", "content": f"Here is the data to analyze:\n{trace}"},
        {"role": "user", "content": "Classify the user's sentiment: Negative, Neutral, Positive or Mixed."},
    ]


async def bare(url: str, n: int, concurrency: int, messages: list[list[dict]] | None = None) -> float:
    """The minimal client: httpx2 with a pool sized to the concurrency, an asyncio semaphore, JSON out.
    `messages`: each request's chat messages (another client's, replayed); by default small made-up ones."""
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=60) as client:
        semaphore = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {KEY}"}

        async def one(i: int) -> str:
            async with semaphore:
                chat = messages[i] if messages else _messages(i)
                body = {"model": "gpt-5.4", "messages": chat, "max_completion_tokens": 512}
                response = await client.post(f"{url}/chat/completions", json=body, headers=headers)
                response.raise_for_status()
                return response.json()["choices"][0]["message"]["content"]

        start = time.perf_counter()
        replies = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - start
    assert all(replies), "the bare client lost a reply"
    return wall


async def ours(url: str, n: int, concurrency: int) -> float:
    from pydantic import SecretStr

    endpoint = Endpoint("labeller", "gpt-5.4", url, SecretStr(KEY))
    client = make_chat_client(endpoint, timeout=60, max_retries=2, concurrency=concurrency)
    requests = [ChatRequest.build(endpoint, _messages(i), max_tokens=512) for i in range(n)]
    delivered: list[str] = []
    start = time.perf_counter()
    results = await run_chat_requests(client, requests, concurrency, lambda r: delivered.append(r.key))
    wall = time.perf_counter() - start
    await client.close()
    failed = [r.error for r in results if r.error]
    assert not failed and len(delivered) == n, f"{len(failed)} failed: {failed[:3]}"
    return wall


async def openai_defaults(url: str, n: int, concurrency: int) -> float:
    """For reference: AsyncOpenAI with its own default HTTP client and a semaphore."""
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key=KEY, timeout=60)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await client.chat.completions.create(
                model="gpt-5.4", messages=_messages(i), max_completion_tokens=512
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - start
    await client.close()
    return wall


class ServerProcess:
    def __init__(self, latency: float, separate: bool):
        self.latency, self.separate = latency, separate

    def __enter__(self) -> ServerProcess:
        if not self.separate:
            self._fake = FakeOpenAIServer(latency=self.latency).__enter__()
            self.url = self._fake.url
            return self
        self._separate = FakeProcess(self.latency).__enter__()
        self.url = self._separate.url
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.separate:
            self.peak = self._fake.max_in_flight
            self._fake.__exit__(*exc)
            return
        self._separate.__exit__(*exc)
        self.peak = self._separate.peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="requests (default 1000)")
    parser.add_argument("--concurrency", type=int, default=128, help="requests in flight (default 128)")
    parser.add_argument(
        "--latency", type=float, default=1.0, help="fake server latency in seconds (default 1.0)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds, clients interleaved; medians reported")
    parser.add_argument(
        "--in-process-server",
        action="store_true",
        help="run the fake in this process (it then competes with the client for the interpreter lock)",
    )
    parser.add_argument(
        "--skip-openai-defaults", action="store_true", help="do not measure AsyncOpenAI defaults"
    )
    args = parser.parse_args()
    n, c, latency = args.n, args.concurrency, args.latency
    floor = math.ceil(n / c) * latency
    where = "in this process" if args.in_process_server else "in its own process"
    print(f"N={n} C={c} L={latency}s floor=ceil(N/C)*L={floor:.2f}s; fake server {where}")
    if c / latency > 200:
        print("warning: C/L above ~200 requests/s measures the Python fake, not the client", file=sys.stderr)

    runs = [("bare httpx2 + semaphore", bare), ("facetopt run_chat_requests", ours)]
    if not args.skip_openai_defaults:
        runs.append(("AsyncOpenAI defaults + semaphore", openai_defaults))
    walls: dict[str, list[float]] = {name: [] for name, _ in runs}
    for round_ in range(args.repeat):
        for name, run in runs:
            with ServerProcess(latency, separate=not args.in_process_server) as server:
                wall = asyncio.run(run(server.url, n, c))
            walls[name].append(wall)
            print(
                f"[{round_ + 1}] {name:34s} wall {wall:6.2f}s  /floor {wall / floor:5.3f}  peak {server.peak}"
            )
    medians = {name: statistics.median(values) for name, values in walls.items()}
    base = medians["bare httpx2 + semaphore"]
    print("median over rounds:")
    for name, wall in medians.items():
        print(f"  {name:34s} wall {wall:6.2f}s  /floor {wall / floor:5.3f}  /bare {wall / base:5.3f}")


if __name__ == "__main__":
    main()
