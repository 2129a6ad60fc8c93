"""`eval --max-cost` inside the runner: one budget for the facet model and the judge; calls stop
once spent plus in flight would pass it; what was paid is cached, so a re-run pays only the rest.
The task and the scorer run in-process here (the runner's own code, against the loopback fake)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from facetopt.domain.cost import NOT_SENT_COST
from facetopt.domain.dataset import DatasetRow
from facetopt.facets.decide.cost import EXPECTED_FACET_TOKENS, cost_of, estimate_prompt_tokens
from facetopt.services.cost import CostBudget, UsageMeter
from facetopt.services.eval import task as eval_task
from facetopt.services.eval.config import EndpointSpec, EvalConfig
from facetopt.services.eval.record import eval_max_cost_warning, eval_usage
from facetopt.services.eval.scorers import FACTUALITY, FactualityScorer, add_judge_usage
from facetopt.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import FACETS

KEY = "sk-eval-cost-secret"
PRICE = (1000.0, 1000.0)  # dollars per million tokens: one token costs a thousandth of a dollar
N = 4


def same_size_rows() -> list[dict[str, Any]]:
    """Cases of one facet whose requests are the same size, so each call's estimate is the same."""
    return [
        {
            "input": {"facet_name": "Issues", "preprocessed_text": f"User: where is parcel {i}?"},
            "expected": "NONE",
            "metadata": {"dataset_row_id": f"row{i}:issues", "split": "validation"},
        }
        for i in range(N)
    ]


def config(tmp_path: Path, server: FakeOpenAIServer, max_cost: float | None) -> EvalConfig:
    return EvalConfig(
        project="p",
        experiment_name="e",
        facet_model=EndpointSpec(role="facet_model", model="gpt-4o-mini", base_url=server.url),
        judge=EndpointSpec(role="judge", model="gpt-5.4", simulated=True),
        max_tokens=64,
        request_timeout=10,
        call_deadline=5,
        concurrency=1,
        store_path=str(tmp_path / "store.duckdb"),
        rows_file=str(tmp_path / "rows.jsonl"),
        facets=FACETS,
        prices={"gpt-4o-mini": PRICE},
        max_cost=max_cost,
    )


def run_tasks(runtime: eval_task.FacetEval) -> list[str]:
    async def one_by_one() -> list[str]:
        outputs = []
        for case in same_size_rows():
            hooks = SimpleNamespace(metadata=dict(case["metadata"]), trial_index=0, expected=case["expected"])
            outputs.append(await runtime.task(case["input"], hooks))
        await runtime.model_client.close()
        return outputs

    try:
        return asyncio.run(one_by_one())
    finally:
        runtime.cache.close()


def test_max_cost_stops_the_facet_model_keeps_what_was_paid_and_a_rerun_pays_the_rest(tmp_path: Path):
    # the fake reports exactly facetopt's estimate, so each call costs what the guard expects
    def usage(body: dict, reply: str) -> tuple[int, int]:
        return estimate_prompt_tokens(body["messages"]), EXPECTED_FACET_TOKENS

    with FakeOpenAIServer(api_key=KEY, usage=usage) as server:
        one_call = cost_of(*usage({"messages": first_request(tmp_path, server)}, ""), PRICE)
        limited = eval_task.FacetEval(
            config(tmp_path, server, 2.5 * one_call), writer(tmp_path, "a"), KEY, None
        )
        outputs = run_tasks(limited)
        assert server.count == 2  # the third call would pass the limit: never sent
        assert [bool(o) for o in outputs] == [True, True, False, False]
        records = eval_task.read_results(tmp_path / "a.jsonl")
        assert [r["error"] for r in records] == [None, None, NOT_SENT_COST, NOT_SENT_COST]
        assert limited.model_meter.usage.calls == 2
        assert limited.model_meter.usage.cost_usd == pytest.approx(2 * one_call)

        # as the runner does: the rows' cached outputs are read before the first task
        again = eval_task.FacetEval(
            config(tmp_path, server, None), writer(tmp_path, "b"), KEY, None, rows=dataset_rows()
        )
        assert all(run_tasks(again))
        assert server.count == N  # the re-run paid only for the two calls it lacked
        assert (again.model_meter.usage.cached_calls, again.model_meter.usage.calls) == (2, 2)


def first_request(tmp_path: Path, server: FakeOpenAIServer) -> list[dict[str, Any]]:
    case = same_size_rows()[0]
    runtime_config = config(tmp_path, server, None)
    facet = runtime_config.facet("Issues")
    assert facet is not None
    request = eval_task.facet_request(facet, case["input"]["preprocessed_text"], "gpt-4o-mini", 64, "k")
    return request.messages


def dataset_rows() -> list[DatasetRow]:
    return [
        DatasetRow(id=c["metadata"]["dataset_row_id"], input=c["input"], expected=c["expected"])
        for c in same_size_rows()
    ]


def writer(tmp_path: Path, name: str) -> eval_task.ResultsWriter:
    return eval_task.ResultsWriter(tmp_path / f"{name}.jsonl", score_names=())


class ReportingJudge:
    """Stands in for autoevals' Factuality: its client's usage hook sees each reply's tokens."""

    def __init__(self) -> None:
        self.calls = 0

    async def eval_async(self, **_: Any) -> Any:
        self.calls += 1
        add_judge_usage({"prompt_tokens": 400, "completion_tokens": 100})
        return SimpleNamespace(score=1.0, metadata={})


def test_the_judge_shares_the_budget_and_is_held_back_once_it_would_pass_it(tmp_path: Path):
    budget = CostBudget(1.0)
    meter = UsageMeter("judge", "j", {"j": PRICE}, budget)
    budget.spent = 0.2  # what the facet model already spent on this run
    judge = ReportingJudge()
    results = eval_task.ResultsWriter(tmp_path / "r.jsonl", score_names=(FACTUALITY,))
    scorer = FactualityScorer(judge, results, deadline=5, meter=meter)

    async def judge_rows() -> list[Any]:
        scores = []
        for i in range(3):
            key = {"dataset_row_id": f"r{i}", "trial": 0}
            results.task_done((f"r{i}", 0), {"id": f"r{i}", "output": "NONE", "error": None})
            scores.append(
                await scorer.eval_async("NONE", expected="NONE", input={"facet_name": "Issues"}, metadata=key)
            )
        return scores

    scores = asyncio.run(judge_rows())
    # each judgement costs 0.5 (500 tokens); estimated at about that: 0.2 + 0.5 fits, a second does not
    assert judge.calls == 1 and scores[0] is not None and scores[1:] == [None, None]
    assert (meter.usage.calls, meter.usage.prompt_tokens, meter.usage.completion_tokens) == (1, 400, 100)
    assert budget.spent == pytest.approx(0.7) and budget.refused == 2
    lines = eval_task.read_results(tmp_path / "r.jsonl")
    assert [line.get("scorer_errors", {}).get(FACTUALITY) for line in lines] == [
        None,
        NOT_SENT_COST,
        NOT_SENT_COST,
    ]
    assert lines[0]["judge_usage"] == {"prompt_tokens": 400, "completion_tokens": 100}


def test_the_parent_reports_usage_per_role_with_cached_calls_free_and_names_what_was_held_back():
    records = [
        {"id": "a", "error": None, "model_usage": {"prompt_tokens": 100, "completion_tokens": 10},
         "judge_usage": {"prompt_tokens": 400, "completion_tokens": 100}},
        {"id": "b", "error": None, "model_from_cache": True, "judge_from_cache": True},
        {"id": "c", "error": NOT_SENT_COST},
        {"id": "d", "error": None, "model_usage": {"prompt_tokens": 100, "completion_tokens": 10},
         "scorer_errors": {FACTUALITY: NOT_SENT_COST}},
    ]  # fmt: skip
    plan = SimpleNamespace(
        settings=Settings(prices="m=1000/1000,j=1000/1000"),
        model=SimpleNamespace(model="m"),
        judge=SimpleNamespace(model="j"),
    )
    model, judge = eval_usage(plan, records)  # type: ignore[arg-type]
    assert (model.role, model.calls, model.cached_calls, model.prompt_tokens) == ("facet model", 2, 1, 200)
    assert model.cost_usd == pytest.approx(0.22) and model.price_source == "settings"
    assert (judge.calls, judge.cached_calls, judge.prompt_tokens + judge.completion_tokens) == (1, 1, 500)
    warning = eval_max_cost_warning(0.5, 1, 1, [model, judge])
    assert "--max-cost $0.5 reached: 1 facet model and 1 judge calls were not sent" in warning
    assert "about $0.7200 spent" in warning and "a re-run pays only for the rest" in warning
