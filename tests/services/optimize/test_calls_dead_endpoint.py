"""The optimiser's proposer (and its other in-process calls) stop at a dead endpoint with its
status, keeping in the call cache what was paid before it died."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from facetopt.clients.llm.client import ChatRequest
from facetopt.clients.llm.endpoints import Endpoint
from facetopt.errors import ModelError
from facetopt.services.cost import CostBudget, UsageMeter
from facetopt.services.optimize.calls import Caller
from tests.fakes.openai_server import Failure, FakeOpenAIServer

KEY = "sk-proposer-dead-secret"


def _caller(tmp_path: Path, server: FakeOpenAIServer) -> Caller:
    endpoint = Endpoint(role="proposer", model="m", base_url=server.url, api_key=SecretStr(KEY))
    meter = UsageMeter("proposer", "m", {}, CostBudget(None), 16)
    return Caller(endpoint, meter, tmp_path / "store.duckdb", True, timeout=10, deadline=30, concurrency=1)


def _requests(count: int) -> list[ChatRequest]:
    return [
        ChatRequest(key="", model="m", messages=[{"role": "user", "content": f"propose edit {i}"}])
        for i in range(count)
    ]


def test_a_proposer_that_dies_stops_the_run_and_keeps_the_paid_proposals(tmp_path: Path) -> None:
    calls, lock = itertools.count(), threading.Lock()

    def dies_after_three(body: dict) -> Failure | None:
        with lock:
            return Failure(403, message=f"key {KEY} revoked") if next(calls) >= 3 else None

    with FakeOpenAIServer(api_key=KEY, fail_when=dies_after_three) as server:
        first = _caller(tmp_path, server)
        with pytest.raises(ModelError) as caught:
            first.run(_requests(20), "proposal")
        first.close()
        sent = server.count
        assert "proposer endpoint is refusing every call" in caught.value.message
        assert "HTTP 403" in caught.value.message and KEY not in caught.value.message
        assert sent < 20  # the calls after the verdict were not sent
        # the three paid proposals are in the call cache: a re-run asks only for the rest
        again = _caller(tmp_path, server)
        assert again.unpaid(_requests(3)) == (3, 0.0)
        again.close()
