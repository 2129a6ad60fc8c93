"""The labelling client under a cost limit (what `dataset create` and `dataset audit` share): a call
is sent only while what is spent plus what is in flight stays within --max-cost; what was paid is
cached and a re-run pays only for the rest. Against the loopback OpenAI fake, reporting usage."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from facetopt.clients.llm.client import ChatRequest, Endpoint
from facetopt.domain.cost import NOT_SENT_COST
from facetopt.facets.decide.cost import EXPECTED_LABEL_TOKENS, cost_of, estimate_prompt_tokens
from facetopt.services.cost import CostBudget, UsageMeter
from facetopt.services.dataset.labelling import LabelOutcome, label_requests
from facetopt.services.progress import SilentProgress
from tests.fakes.openai_server import FakeOpenAIServer

KEY = "sk-label-budget-secret"
PRICE = (1000.0, 1000.0)  # dollars per million tokens
N = 6


def as_estimated(body: dict, reply: str) -> tuple[int, int]:
    """The fake reports exactly facetopt's estimate, so each call costs what the guard reserved."""
    return estimate_prompt_tokens(body["messages"]), EXPECTED_LABEL_TOKENS


def requests(endpoint: Endpoint) -> dict[str, ChatRequest]:
    """Rows whose requests are the same size (each call's estimate is the same)."""
    return {
        f"row{i}": ChatRequest.build(
            endpoint,
            [{"role": "user", "content": f"Label trace {i}: the user asks for a refund."}],
            max_tokens=32,
        )
        for i in range(N)
    }


def label(tmp_path: Path, server: FakeOpenAIServer, max_cost: float | None, concurrency: int) -> tuple:
    endpoint = Endpoint("labeller", "gpt-5.4", server.url, SecretStr(KEY))
    meter = UsageMeter("labeller", "gpt-5.4", {"gpt-5.4": PRICE}, CostBudget(max_cost))
    outcome: LabelOutcome = label_requests(
        requests(endpoint),
        endpoint,
        tmp_path / "store.duckdb",
        tmp_path / f"labels-{server.count}.jsonl",
        concurrency=concurrency,
        timeout=10,
        deadline=5,
        progress=SilentProgress(),
        meter=meter,
    )
    return outcome, meter


@pytest.mark.parametrize("concurrency", [1, 4])
def test_max_cost_counts_what_is_in_flight_and_a_rerun_pays_only_the_rest(tmp_path: Path, concurrency: int):
    with FakeOpenAIServer(api_key=KEY, usage=as_estimated, latency=0.05) as server:
        one = cost_of(*as_estimated({"messages": next(iter(requests(dummy()).values())).messages}, ""), PRICE)
        limited, meter = label(tmp_path, server, 3.5 * one, concurrency)
        # three calls fit; a fourth, even while the first three are still in flight, would pass it
        assert server.count == 3 and limited.paid == 3 and limited.not_sent == 3
        assert sorted(limited.failures.values()) == [NOT_SENT_COST] * 3
        assert meter.usage.calls == 3 and meter.usage.cost_usd == pytest.approx(3 * one)
        assert meter.usage.cost_usd <= 3.5 * one

        rest, again = label(tmp_path, server, None, concurrency)
    assert (rest.from_cache, rest.paid, rest.failures) == (3, 3, {})
    assert (again.usage.cached_calls, again.usage.calls) == (3, 3)  # cached labels are free
    assert server.count == N


def dummy() -> Endpoint:
    return Endpoint("labeller", "gpt-5.4", "http://127.0.0.1:9/v1", SecretStr(KEY))


class CountingProgress(SilentProgress):
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def start(self, task: str, total: int) -> None:
        self.totals[task], self.done[task] = total, 0

    def advance(self, task: str, amount: int = 1) -> None:
        self.done[task] += amount


def test_the_progress_bar_counts_every_row_asked_about_cached_ones_included(tmp_path: Path):
    """`dataset audit` says "second opinions on N rows": the bar beside it must end at N/N, not
    at the number still to pay for (the audit once showed 46 rows beside a bar of 36/36)."""
    with FakeOpenAIServer(api_key=KEY, usage=as_estimated) as server:
        endpoint = Endpoint("labeller", "gpt-5.4", server.url, SecretStr(KEY))
        asked = requests(endpoint)
        first = dict(list(asked.items())[:2])  # two rows paid for (and cached) first
        for batch, journal in ((first, "a"), (asked, "b")):
            progress = CountingProgress()
            label_requests(
                batch,
                endpoint,
                tmp_path / "store.duckdb",
                tmp_path / f"{journal}.jsonl",
                concurrency=2,
                timeout=10,
                deadline=5,
                progress=progress,
            )
    assert server.count == N  # 2, then the 4 not cached
    assert progress.totals == {"labelling": N} and progress.done == {"labelling": N}
