"""Throughput under a rate cap: facetopt's policy against the original scripts' threads, one run.

    python bench/bench_rate_limit.py                    # cap 50/s, N=500, C=128, L=50 ms; eval 64 rows in flight
    python bench/bench_rate_limit.py --n 300 --skip-eval

The fake (in its own process) admits `--cap` requests per second (a token bucket holding one
second's worth) and answers 429 with `Retry-After` in whole seconds above it, as a provider
does; it sleeps L per admitted request. Reported per client: failed rows, 429s the fake sent,
and the share of the cap achieved, successes / wall / cap (reference/performance.md). Clients:
- facetopt labelling: `run_chat_requests` with C requested, through the rate-limit policy;
- the original scripts' labeller, emulated as they are written: a synchronous `openai.OpenAI`
  with its default retries (2), `chat.completions.create` per call in a ThreadPoolExecutor(C),
  a call that still fails after its retries is a failed row;
- facetopt eval: the whole `facetopt eval` (SDK runner) over N rows with 64 rows in flight; the
  facet model and the judge each behind their own capped fake; share = the model fake's
  successes over its first-to-last request time.
Targets (issue 12): 0 failed rows and at least 0.9 of the cap for labelling and for the eval.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

from bench_labelling import KEY, _messages  # noqa: E402
from fake_process import FakeProcess  # noqa: E402


def facetopt_labelling(url: str, n: int, concurrency: int) -> tuple[float, int, str]:
    from pydantic import SecretStr

    from facetopt.clients.llm.chat_runs import run_chat_requests
    from facetopt.clients.llm.client import (
        ChatRequest,
        Endpoint,
        make_chat_client,
        policy_stats,
    )

    endpoint = Endpoint("labeller", "gpt-5.4", url, SecretStr(KEY))
    requests = [ChatRequest.build(endpoint, _messages(i), max_tokens=512) for i in range(n)]

    async def go() -> tuple[float, list]:
        client = make_chat_client(endpoint, timeout=60, concurrency=concurrency)
        start = time.perf_counter()
        results = await run_chat_requests(client, requests, concurrency, lambda r: None)
        wall = time.perf_counter() - start
        await client.close()
        return wall, results

    wall, results = asyncio.run(go())
    stats = policy_stats(endpoint)
    return wall, sum(1 for r in results if not r.ok), stats.describe() if stats else ""


def original_threads(
    url: str, n: int, concurrency: int, messages: list[list[dict]] | None = None
) -> tuple[float, int, str]:
    """The original labeller: sync openai client, default retries, ThreadPoolExecutor(C). `messages`:
    each request's chat messages (another client's, replayed); by default small made-up ones."""
    import openai

    client = openai.OpenAI(base_url=url, api_key=KEY, timeout=60)

    def label(i: int) -> str | None:
        try:
            reply = client.chat.completions.create(
                model="gpt-5.4", messages=messages[i] if messages else _messages(i), max_completion_tokens=512
            )
            return reply.choices[0].message.content
        except openai.APIError:
            return None

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        labels = list(pool.map(label, range(n)))
    return time.perf_counter() - start, sum(1 for x in labels if not x), ""


def facetopt_eval(n: int, cap: float, latency: float, concurrency: int) -> None:
    from bench_eval import JUDGE_KEY, MODEL_KEY, seed
    from bench_eval import facetopt_eval as run

    with tempfile.TemporaryDirectory(prefix="facetopt-bench-") as folder:
        root = Path(folder)
        here = Path.cwd()
        os.chdir(root)
        try:
            seed(root, n)
            with (
                FakeProcess(latency, MODEL_KEY, rate_cap=cap) as model,
                FakeProcess(latency, JUDGE_KEY, rate_cap=cap) as judge,
            ):
                wall, summary = run(root, model.url, judge.url, concurrency)
        finally:
            os.chdir(here)
    share = n / model.phase / cap
    print(
        f"  facetopt eval ({concurrency} rows in flight)  failed {summary.errors + summary.factuality_errors:4d}  "
        f"429s model {model.throttled} judge {judge.throttled}  model phase {model.phase:6.2f}s  "
        f"share of cap {share:5.3f}  (whole command {wall:.1f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="calls (default 500)")
    parser.add_argument("--cap", type=float, default=50.0, help="requests per second the fake admits (50)")
    parser.add_argument("--latency", type=float, default=0.05, help="fake latency, seconds (0.05)")
    parser.add_argument("--concurrency", type=int, default=128, help="labelling requests in flight (128)")
    parser.add_argument("--eval-concurrency", type=int, default=64, help="eval rows in flight (64)")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument(
        "--rate-headers", action="store_true", help="the fake also sends x-ratelimit-* headers"
    )
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith(("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_"))]:
        del os.environ[name]
    n, cap = args.n, args.cap
    print(
        f"N={n} cap={cap:.0f}/s C={args.concurrency} L={args.latency}s; "
        f"ideal about {(n - cap) / cap:.1f}s (one second's burst, then the cap)"
    )
    for name, run in (("facetopt labelling", facetopt_labelling), ("original threads", original_threads)):
        with FakeProcess(args.latency, KEY, rate_cap=cap, rate_headers=args.rate_headers) as fake:
            wall, failed, detail = run(fake.url, n, args.concurrency)
        share = (n - failed) / wall / cap
        print(
            f"  {name:34s} failed {failed:4d}  429s {fake.throttled:5d}  wall {wall:6.2f}s  "
            f"share of cap {share:5.3f}  {detail}"
        )
    if not args.skip_eval:
        facetopt_eval(n, cap, args.latency, args.eval_concurrency)


if __name__ == "__main__":
    main()
