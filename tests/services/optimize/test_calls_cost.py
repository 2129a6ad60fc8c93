"""The optimiser's in-process calls under `--max-cost`: each reply's usage priced, a call that would
pass the limit never sent, what was paid kept in the call cache so a re-run pays only the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from facetopt.clients.llm.client import ChatRequest
from facetopt.clients.llm.endpoints import Endpoint
from facetopt.domain.cost import NOT_SENT_COST
from facetopt.facets.decide.cost import cost_of, estimate_prompt_tokens
from facetopt.services.cost import CostBudget, UsageMeter
from facetopt.services.optimize.calls import Caller
from tests.fakes.openai_server import FakeOpenAIServer

KEY = "sk-optimize-cost-secret"
PRICE = (1000.0, 1000.0)  # dollars per million tokens
REPLY_TOKENS = 16


def caller(tmp_path: Path, server: FakeOpenAIServer, max_cost: float | None) -> Caller:
    endpoint = Endpoint(role="facet_model", model="m", base_url=server.url, api_key=SecretStr(KEY))
    meter = UsageMeter("facet model", "m", {"m": PRICE}, CostBudget(max_cost), REPLY_TOKENS)
    return Caller(endpoint, meter, tmp_path / "store.duckdb", True, timeout=10, deadline=5, concurrency=1)


def requests() -> list[ChatRequest]:
    return [
        ChatRequest(key="", model="m", messages=[{"role": "user", "content": f"where is parcel {i}?"}])
        for i in range(4)
    ]


def test_max_cost_holds_back_calls_and_a_rerun_pays_only_for_the_rest(tmp_path: Path):
    def usage(body: dict, reply: str) -> tuple[int, int]:  # exactly the estimate
        return estimate_prompt_tokens(body["messages"]), REPLY_TOKENS

    one_call = cost_of(estimate_prompt_tokens(requests()[0].messages), REPLY_TOKENS, PRICE)
    with FakeOpenAIServer(api_key=KEY, usage=usage) as server:
        limited = caller(tmp_path, server, 2.5 * one_call)
        batch = limited.run(requests(), "model")
        limited.close()
        assert server.count == 2 and (batch.calls, batch.not_sent, batch.failed) == (4, 2, 2)
        assert [r.error for r in batch.results.values()] == [None, None, NOT_SENT_COST, NOT_SENT_COST]
        assert batch.cost_usd == pytest.approx(2 * one_call) == limited.meter.usage.cost_usd
        assert batch.prompt_tokens == 2 * estimate_prompt_tokens(requests()[0].messages)

        again = caller(tmp_path, server, None)
        assert again.unpaid(requests()) == (4, pytest.approx(2 * one_call))  # the cached two are free
        batch = again.run(requests(), "model")
        again.close()
        assert server.count == 4 and batch.from_cache == 2 and batch.failed == 0
        assert (again.meter.usage.calls, again.meter.usage.cached_calls) == (2, 2)
        assert batch.cost_usd == pytest.approx(2 * one_call)
