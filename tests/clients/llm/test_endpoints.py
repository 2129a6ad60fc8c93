"""Which endpoint and key each model role resolves to, and what the cache key covers."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from facetopt.clients.llm.client import (
    ChatRequest,
    Endpoint,
    cache_key,
    mixed_simulation_warning,
    resolve_facet_model,
    resolve_judge,
    resolve_labeller,
    simulated_roles,
)
from facetopt.settings import DEFAULT_PROXY_URL, Settings


def resolved(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[Endpoint, Endpoint, Endpoint]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    return resolve_labeller(settings), resolve_facet_model(settings), resolve_judge(settings)


def test_no_key_and_no_base_means_every_role_is_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = resolved(monkeypatch)
    assert simulated_roles(*endpoints) == ["labeller", "facet_model", "judge"]
    assert {e.label for e in endpoints} == {"simulated"}
    assert mixed_simulation_warning(*endpoints) is None


def test_braintrust_key_alone_sends_every_role_to_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = resolved(monkeypatch, BRAINTRUST_API_KEY="bt-key-1")
    assert [e.base_url for e in endpoints] == [DEFAULT_PROXY_URL] * 3
    assert [e.key_source for e in endpoints] == ["BRAINTRUST_API_KEY"] * 3
    assert simulated_roles(*endpoints) == []


def test_proxy_url_override(monkeypatch: pytest.MonkeyPatch) -> None:
    labeller, facet_model, _ = resolved(
        monkeypatch, BRAINTRUST_API_KEY="k", BRAINTRUST_PROXY_URL="https://proxy.example/v1"
    )
    assert labeller.base_url == facet_model.base_url == "https://proxy.example/v1"


def test_key_precedence_for_the_labeller(monkeypatch: pytest.MonkeyPatch) -> None:
    labeller, facet_model, judge = resolved(
        monkeypatch,
        FACET_OPTIMIZER_GROUND_TRUTH_API_KEY="gt-key",
        OPENAI_API_KEY="oa-key",
        BRAINTRUST_API_KEY="bt-key",
    )
    assert labeller.api_key is not None and labeller.api_key.get_secret_value() == "gt-key"
    assert labeller.base_url == "https://api.openai.com/v1"
    assert judge.key_source == "OPENAI_API_KEY" and judge.base_url == "https://api.openai.com/v1"
    assert facet_model.key_source == "BRAINTRUST_API_KEY" and facet_model.base_url == DEFAULT_PROXY_URL


def test_openai_key_alone_leaves_the_facet_model_simulated_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoints = resolved(monkeypatch, OPENAI_API_KEY="oa-key")
    assert simulated_roles(*endpoints) == ["facet_model"]
    warning = mixed_simulation_warning(*endpoints)
    assert warning is not None and "facet_model" in warning and "labeller" in warning


def test_simulated_base_wins_over_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    labeller, _, _ = resolved(
        monkeypatch, OPENAI_API_KEY="k", FACET_OPTIMIZER_GROUND_TRUTH_API_BASE="simulated://"
    )
    assert labeller.simulated and labeller.api_key is None


def test_base_without_key_is_a_real_keyless_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    _, facet_model, _ = resolved(monkeypatch, FACET_OPTIMIZER_API_BASE="http://127.0.0.1:8000/v1/")
    assert not facet_model.simulated and facet_model.base_url == "http://127.0.0.1:8000/v1"
    assert facet_model.api_key is None


def test_the_key_never_shows_in_repr_or_label() -> None:
    endpoint = Endpoint("judge", "gpt-5.4", "https://user:pw-123@llm.example/v1", SecretStr("sk-secret-999"))
    assert "sk-secret-999" not in repr(endpoint) and "sk-secret-999" not in str(endpoint)
    assert endpoint.label == "https://llm.example/v1"


def test_cache_key_covers_endpoint_model_messages_and_params() -> None:
    messages = [{"role": "user", "content": "hi"}]
    base = cache_key("simulated", "gpt-5.4", messages, {"max_tokens": 512})
    assert base == cache_key("simulated", "gpt-5.4", [{"content": "hi", "role": "user"}], {"max_tokens": 512})
    assert base != cache_key("https://api.openai.com/v1", "gpt-5.4", messages, {"max_tokens": 512})
    assert base != cache_key("simulated", "gpt-5.5", messages, {"max_tokens": 512})
    assert base != cache_key("simulated", "gpt-5.4", messages, {"max_tokens": 256})
    real = Endpoint("labeller", "gpt-5.4", "https://api.openai.com/v1", SecretStr("k"))
    fake = Endpoint("labeller", "gpt-5.4", None, None, simulated=True)
    assert ChatRequest.build(real, messages).key != ChatRequest.build(fake, messages).key
