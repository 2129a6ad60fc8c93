"""BRAINTRUST_API_KEY goes to Braintrust's own origins only (the API, app and AI proxy as
configured); a role pointed anywhere else without a key of its own gets no key and one sentence
naming the setting that takes its key."""

from __future__ import annotations

import pytest

from facetopt.clients.llm.endpoints import (
    Endpoint,
    key_notes,
    resolve_auditor,
    resolve_facet_model,
    resolve_judge,
    resolve_labeller,
    resolve_proposer,
)
from facetopt.errors import redact_credentials
from facetopt.settings import DEFAULT_PROXY_URL, Settings

BT_KEY = "bt-org-key-7a7a7a7a"
ELSEWHERE = "http://127.0.0.1:8081/v1"

# role -> (its base URL variable, the variable that takes its own key)
ROLES = {
    "labeller": (
        resolve_labeller,
        "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE",
        "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY",
    ),
    "auditor": (resolve_auditor, "FACET_OPTIMIZER_AUDIT_API_BASE", "FACET_OPTIMIZER_AUDIT_API_KEY"),
    "proposer": (resolve_proposer, "FACET_OPTIMIZER_PROPOSER_API_BASE", "FACET_OPTIMIZER_PROPOSER_API_KEY"),
    "facet_model": (resolve_facet_model, "FACET_OPTIMIZER_API_BASE", "FACET_OPTIMIZER_API_KEY"),
    "judge": (resolve_judge, "FACET_OPTIMIZER_JUDGE_API_BASE", "FACET_OPTIMIZER_JUDGE_API_KEY"),
}


def _resolve(monkeypatch: pytest.MonkeyPatch, role: str, **env: str) -> Endpoint:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ROLES[role][0](Settings())


@pytest.mark.parametrize("role", sorted(ROLES))
def test_a_role_pointed_elsewhere_gets_no_braintrust_key(monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    _, base_var, key_var = ROLES[role]
    endpoint = _resolve(monkeypatch, role, BRAINTRUST_API_KEY=BT_KEY, **{base_var: ELSEWHERE})
    assert endpoint.secret() is None and not endpoint.simulated and endpoint.base_url == ELSEWHERE
    assert endpoint.key_note is not None and key_var in endpoint.key_note
    assert BT_KEY not in endpoint.key_note and "BRAINTRUST_API_KEY is not sent" in endpoint.key_note
    assert key_notes(endpoint, endpoint) == [endpoint.key_note]  # said once


@pytest.mark.parametrize("role", sorted(ROLES))
def test_a_key_of_its_own_goes_where_the_role_points(monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    _, base_var, key_var = ROLES[role]
    endpoint = _resolve(
        monkeypatch, role, BRAINTRUST_API_KEY=BT_KEY, **{base_var: ELSEWHERE, key_var: "own-key-1"}
    )
    assert endpoint.secret() == "own-key-1" and endpoint.key_note is None


@pytest.mark.parametrize(
    ("variable", "origin"),
    [
        ("BRAINTRUST_PROXY_URL", "https://proxy.internal.example"),
        ("BRAINTRUST_API_URL", "https://bt-api.internal.example:8443"),
        ("BRAINTRUST_APP_URL", "https://bt.internal.example"),
        ("BRAINTRUST_PROXY_API_BASE", "http://10.0.0.5:9000"),
    ],
)
def test_custom_braintrust_origins_keep_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, origin: str
) -> None:
    endpoint = _resolve(
        monkeypatch,
        "labeller",
        BRAINTRUST_API_KEY=BT_KEY,
        FACET_OPTIMIZER_GROUND_TRUTH_API_BASE=origin + "/v1",
        **{variable: origin + "/somewhere"},
    )
    assert endpoint.secret() == BT_KEY and endpoint.key_note is None
    # the same host on another port is another origin
    other = origin.rsplit(":", 1)[0] if origin.count(":") == 2 else origin
    moved = _resolve(monkeypatch, "labeller", FACET_OPTIMIZER_GROUND_TRUTH_API_BASE=other + ":7/v1")
    assert moved.secret() is None


def test_the_default_proxy_still_gets_the_braintrust_key(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = _resolve(monkeypatch, "judge", BRAINTRUST_API_KEY=BT_KEY)
    assert endpoint.base_url == DEFAULT_PROXY_URL and endpoint.secret() == BT_KEY
    pointed = _resolve(monkeypatch, "judge", FACET_OPTIMIZER_JUDGE_API_BASE=DEFAULT_PROXY_URL)
    assert pointed.secret() == BT_KEY


def test_url_credentials_are_never_in_the_label_and_are_masked_in_text() -> None:
    url = "http://user:sk-url-secret-99@127.0.0.1:9/v1"
    endpoint = Endpoint("judge", "m", url, None)
    assert endpoint.label == "http://127.0.0.1:9/v1"
    text = redact_credentials(f"POST {url}/chat/completions failed; also https://bob:hunter22@x.example", [])
    assert "sk-url-secret-99" not in text and "hunter22" not in text
    assert "http://***@127.0.0.1:9/v1" in text
