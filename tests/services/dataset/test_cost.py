"""Tokens and cost of labelling: the dry-run estimate against the usage the model reports, cached
calls free, and --max-cost stopping new calls while keeping what was paid."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from facetopt.domain.cost import RoleUsage
from facetopt.facets.decide.cost import cost_of, parse_prices, price_for
from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import FakeOpenAIServer

SECRET = "sk-test-cost-secret"
LIMITS = ["--positive-limit", "4", "--negative-limit", "4"]
PRICES = "gpt-5.4=2/8"


def by_words(text: str) -> int:
    return math.ceil(len(text.split()) * 4 / 3)


def word_tokens(body: dict, reply: str) -> tuple[int, int]:
    """The fake's own count, not facetopt's estimator (characters): the other rule of thumb, a token
    is three quarters of a word, plus 4 per message; the reply counted the same way."""
    messages = body["messages"]
    return sum(by_words(str(m.get("content") or "")) + 4 for m in messages), by_words(reply)


def env(server: FakeOpenAIServer) -> dict[str, str]:
    return {
        "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url,
        "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": SECRET,
        "FACET_OPTIMIZER_PRICES": PRICES,
    }


def labeller(summary: dict) -> RoleUsage:
    [usage] = [RoleUsage.model_validate(u) for u in summary["usage"]]
    assert usage.role == "labeller" and usage.model == "gpt-5.4"
    return usage


def test_prices_default_as_assumptions_and_settings_override_them():
    assert price_for("gpt-5.4", {})[1] == "default (assumption)"
    assert price_for("gpt-5.4", parse_prices(PRICES)) == ((2.0, 8.0), "settings")
    assert price_for("some-new-model", parse_prices("*=1/2")) == ((1.0, 2.0), "settings")
    assert cost_of(1_000_000, 500_000, (2.0, 8.0)) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        parse_prices("gpt-5.4=cheap")


@pytest.mark.slow
def test_the_dry_run_estimate_is_within_20_percent_of_the_real_run(tmp_path: Path):
    with FakeOpenAIServer(api_key=SECRET, usage=word_tokens) as server:
        dry = json_out(run_cli(*create_args(tmp_path, *LIMITS, "--dry-run", "--json"), env=env(server)))
        assert server.count == 0  # nothing paid for
        real = json_out(run_cli(*create_args(tmp_path, *LIMITS, "--json"), env=env(server)))
        again = json_out(run_cli(*create_args(tmp_path, *LIMITS, "--json"), env=env(server)))
    estimate, used = labeller(dry), labeller(real)
    assert estimate.estimated and not used.estimated
    assert estimate.calls == used.calls == real["labels_paid"] > 0
    assert used.prompt_tokens > 0 and used.completion_tokens > 0
    assert abs(estimate.total_tokens - used.total_tokens) <= 0.2 * used.total_tokens
    assert abs(estimate.cost_usd - used.cost_usd) <= 0.2 * used.cost_usd
    assert used.cost_usd == pytest.approx(cost_of(used.prompt_tokens, used.completion_tokens, (2.0, 8.0)))
    assert used.price_source == "settings"
    # a re-run is served from the cache: free
    cached = labeller(again)
    assert (cached.calls, cached.cost_usd, cached.cached_calls) == (0, 0.0, used.calls)


@pytest.mark.slow
def test_max_cost_stops_new_calls_keeps_what_was_paid_and_a_rerun_resumes(tmp_path: Path):
    with FakeOpenAIServer(api_key=SECRET, usage=word_tokens) as server:
        dry = labeller(
            json_out(run_cli(*create_args(tmp_path, *LIMITS, "--dry-run", "--json"), env=env(server)))
        )
        limit = dry.cost_usd / 3
        first = json_out(
            run_cli(
                *create_args(
                    tmp_path, *LIMITS, "--concurrency", "1", "--max-cost", f"{limit:.10f}", "--json"
                ),
                env=env(server),
            )
        )
        paid_first = server.count
        rest = json_out(run_cli(*create_args(tmp_path, *LIMITS, "--json"), env=env(server)))
    spent = labeller(first)
    assert 0 < spent.calls < dry.calls and paid_first == spent.calls
    # one call in flight at a time: the overshoot is at most one call's estimate
    assert spent.cost_usd <= limit + dry.cost_usd / dry.calls * 1.5
    assert any("--max-cost" in w and "re-run resumes" in w for w in first["warnings"])
    assert first["counts"]["dataset_rows"] == spent.calls
    resumed = labeller(rest)
    assert resumed.cached_calls == spent.calls and resumed.calls == dry.calls - spent.calls
    assert rest["failed_rows"] == []
