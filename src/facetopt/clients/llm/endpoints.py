"""Which endpoint each model role talks to (DECISIONS.md, Models).

A role (labeller, facet model, judge) resolves to an `Endpoint`: a base URL and key, or the
in-process simulation when no base URL and no key is configured for it (or the base URL is
`simulated://`). A key set without a base URL goes to the Braintrust AI proxy when it is the
Braintrust key (and always for the facet model), else to OpenAI. `probe_endpoint` checks that
an endpoint's host answers at all, before any paid work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from facetopt.errors import ModelError
from facetopt.settings import DEFAULT_PROXY_URL, SIMULATED_BASE_URL, Settings

Role = Literal["labeller", "facet_model", "judge", "auditor", "proposer"]
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
CONNECTION_ERROR = "connection error"  # starts the reason of a call or probe that reached no server


@dataclass(frozen=True)
class Endpoint:
    role: Role
    model: str
    base_url: str | None
    api_key: SecretStr | None = field(default=None, repr=False)
    simulated: bool = False
    key_source: str | None = None  # the variable the key came from (a name, safe to show)
    key_note: str | None = None  # said once: BRAINTRUST_API_KEY withheld from a host not Braintrust's

    @property
    def label(self) -> str:
        """What reports and the label cache call this endpoint: "simulated" or the base URL, never a key."""
        if self.simulated:
            return "simulated"
        return without_credentials(self.base_url or OPENAI_DEFAULT_URL)

    def secret(self) -> str | None:
        """The key's value, for the places that must hand it on (a client, the runner's environment)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None


def without_credentials(url: str) -> str:
    """The URL without a `user:password@` part (what may be written down or shown)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def _first_key(*candidates: tuple[SecretStr | None, str]) -> tuple[SecretStr | None, str | None]:
    for key, source in candidates:
        if key is not None and key.get_secret_value().strip():
            return key, source
    return None, None


# the variable that gives each role a key of its own
ROLE_KEY_SETTING = {
    "labeller": "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY",
    "auditor": "FACET_OPTIMIZER_AUDIT_API_KEY",
    "proposer": "FACET_OPTIMIZER_PROPOSER_API_KEY",
    "facet_model": "FACET_OPTIMIZER_API_KEY",
    "judge": "FACET_OPTIMIZER_JUDGE_API_KEY",
}
_DEFAULT_API_URL = "https://api.braintrust.dev"


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port) if parts.hostname else None


def braintrust_origins(settings: Settings) -> set[tuple[str, str, int]]:
    """Braintrust's own origins as configured: the API, the app and the AI proxy (custom ones too)."""
    urls = [
        settings.braintrust_api_url or _DEFAULT_API_URL,
        settings.braintrust_app_url,
        settings.braintrust_proxy_url or DEFAULT_PROXY_URL,
        settings.braintrust_proxy_api_base or "",
    ]
    return {origin for url in urls if url and (origin := _origin(url)) is not None}


def _resolve(
    settings: Settings, role: Role, model: str, base: str | None, *keys: tuple[SecretStr | None, str]
) -> Endpoint:
    key, source = _first_key(*keys)
    base = (base or "").strip() or None
    if base == SIMULATED_BASE_URL or (base is None and key is None):
        return Endpoint(role, model, None, None, simulated=True)
    if (
        base is not None
        and source == "BRAINTRUST_API_KEY"
        and _origin(base) not in braintrust_origins(settings)
    ):
        # the organisation's Braintrust key goes to Braintrust only: this host gets no key
        name = role.replace("_", " ")
        note = (
            f"the {name} endpoint {without_credentials(base)} is not Braintrust's: BRAINTRUST_API_KEY is "
            f"not sent to it and it gets no key; set {ROLE_KEY_SETTING[role]} to give it one"
        )
        return Endpoint(role, model, base.rstrip("/"), None, simulated=False, key_note=note)
    if base is None:
        # BRAINTRUST_PROXY_API_BASE is the original scripts' base URL for every role it serves
        configured = (settings.braintrust_proxy_api_base or "").strip() or None
        proxy = configured or settings.braintrust_proxy_url or DEFAULT_PROXY_URL
        to_proxy = configured is not None or source == "BRAINTRUST_API_KEY" or role == "facet_model"
        base = proxy if to_proxy else OPENAI_DEFAULT_URL
    return Endpoint(role, model, base.rstrip("/"), key, simulated=False, key_source=source)


def resolve_labeller(settings: Settings) -> Endpoint:
    """The original's chains: GROUND_TRUTH_*, then LABEL_* (one setting), then JUDGE_*, then the proxy."""
    return _resolve(
        settings,
        "labeller",
        settings.ground_truth_model,
        settings.ground_truth_api_base or settings.judge_api_base,
        (settings.ground_truth_api_key, "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY"),
        (settings.judge_api_key, "FACET_OPTIMIZER_JUDGE_API_KEY"),
        (settings.openai_api_key, "OPENAI_API_KEY"),
        (settings.braintrust_api_key, "BRAINTRUST_API_KEY"),
    )


def resolve_auditor(settings: Settings) -> Endpoint:
    """The second opinion of `dataset audit`: the audit model (else the labeller's model) at the
    audit base URL (else the labeller's), with the audit key, else the labeller's keys."""
    return _resolve(
        settings,
        "auditor",
        settings.audit_model or settings.ground_truth_model,
        settings.audit_api_base or settings.ground_truth_api_base,
        (settings.audit_api_key, "FACET_OPTIMIZER_AUDIT_API_KEY"),
        (settings.ground_truth_api_key, "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY"),
        (settings.openai_api_key, "OPENAI_API_KEY"),
        (settings.braintrust_api_key, "BRAINTRUST_API_KEY"),
    )


def resolve_proposer(settings: Settings) -> Endpoint:
    """The model `optimize` asks for prompt edits: the proposer model (else the labeller's model) at
    the proposer base URL (else the labeller's chain), with the proposer key, else the labeller's keys."""
    return _resolve(
        settings,
        "proposer",
        settings.proposer_model or settings.ground_truth_model,
        settings.proposer_api_base or settings.ground_truth_api_base or settings.judge_api_base,
        (settings.proposer_api_key, "FACET_OPTIMIZER_PROPOSER_API_KEY"),
        (settings.ground_truth_api_key, "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY"),
        (settings.judge_api_key, "FACET_OPTIMIZER_JUDGE_API_KEY"),
        (settings.openai_api_key, "OPENAI_API_KEY"),
        (settings.braintrust_api_key, "BRAINTRUST_API_KEY"),
    )


def resolve_facet_model(settings: Settings) -> Endpoint:
    return _resolve(
        settings,
        "facet_model",
        settings.model,
        settings.api_base,
        (settings.api_key, "FACET_OPTIMIZER_API_KEY"),
        (settings.braintrust_api_key, "BRAINTRUST_API_KEY"),
    )


def resolve_judge(settings: Settings) -> Endpoint:
    return _resolve(
        settings,
        "judge",
        settings.judge_model,
        settings.judge_api_base,
        (settings.judge_api_key, "FACET_OPTIMIZER_JUDGE_API_KEY"),
        (settings.openai_api_key, "OPENAI_API_KEY"),
        (settings.braintrust_api_key, "BRAINTRUST_API_KEY"),
    )


def key_notes(*endpoints: Endpoint) -> list[str]:
    """The sentences to say once per command about keys withheld (BRAINTRUST_API_KEY elsewhere)."""
    return list(dict.fromkeys(e.key_note for e in endpoints if e.key_note))


def simulated_endpoint(role: Role, model: str) -> Endpoint:
    """A simulated endpoint whatever keys are set (`facetopt demo`)."""
    return Endpoint(role, model, None, None, simulated=True)


def simulated_roles(*endpoints: Endpoint) -> list[str]:
    return [e.role for e in endpoints if e.simulated]


def mixed_simulation_warning(*endpoints: Endpoint) -> str | None:
    """A loud sentence when some roles are simulated and others real, else None."""
    simulated = simulated_roles(*endpoints)
    if not simulated or len(simulated) == len(endpoints):
        return None
    real = [e.role for e in endpoints if not e.simulated]
    return (
        f"SIMULATED model for {', '.join(simulated)} while {', '.join(real)} use real endpoints: "
        "scores mixing simulated and real models are not meaningful"
    )


async def probe_endpoint(endpoint: Endpoint, timeout: float = 5.0) -> str | None:
    """Open (and close) a TCP connection to the endpoint's host: None when reachable, else the reason.

    Costs no model call; lets a command fail with "model endpoint unreachable" before any work.
    """
    if endpoint.simulated:
        return None
    parts = urlsplit(endpoint.base_url or OPENAI_DEFAULT_URL)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError) as exc:
        return f"{CONNECTION_ERROR}: cannot reach {endpoint.label} ({type(exc).__name__}: {exc})"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


_ROLE_SETTINGS = {
    "labeller": "--ground-truth-api-base / FACET_OPTIMIZER_GROUND_TRUTH_API_BASE and "
    "FACET_OPTIMIZER_GROUND_TRUTH_MODEL",
    "auditor": "FACET_OPTIMIZER_AUDIT_API_BASE and FACET_OPTIMIZER_AUDIT_MODEL",
    "proposer": "FACET_OPTIMIZER_PROPOSER_API_BASE and FACET_OPTIMIZER_PROPOSER_MODEL",
    "facet_model": "--api-base / FACET_OPTIMIZER_API_BASE and --model / FACET_OPTIMIZER_MODEL",
    "judge": "--judge-api-base / FACET_OPTIMIZER_JUDGE_API_BASE and FACET_OPTIMIZER_JUDGE_MODEL",
}


def dead_endpoint_error(role: str, reason: str) -> ModelError:
    """The one error that ends a run whose model endpoint refuses every call."""
    name = role.replace("_", " ")
    return ModelError(
        f"the {name} endpoint is refusing every call, so the run stopped: {reason}",
        hint=f"nothing more was sent; what was already paid for is kept and a new run reuses it; "
        f"check {_ROLE_SETTINGS.get(role, 'the endpoint and model')}, and its key",
    )
