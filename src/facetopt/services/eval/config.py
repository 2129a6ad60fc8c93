"""What `facetopt eval` hands the runner process: a config file (no secret in it: it is written to
disk) and environment variables with that file's path, the results file's path and the keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from facetopt.clients.llm.endpoints import Endpoint, without_credentials
from facetopt.clients.prompt_file import FacetPrompt
from facetopt.domain.experiments import FACETOPT_VERSION_KEY, PROMPT_TEXTS_KEY, RUN_STATUS_KEY, RUNNING
from facetopt.errors import ConfigError

CONFIG_ENV = "FACETOPT_EVAL_CONFIG"
RESULTS_ENV = "FACETOPT_EVAL_RESULTS"
MODEL_KEY_ENV = "FACETOPT_EVAL_MODEL_API_KEY"
JUDGE_KEY_ENV = "FACETOPT_EVAL_JUDGE_API_KEY"
# a base URL with credentials in it (`https://user:pass@host/v1`) travels like a key, never on disk
MODEL_URL_ENV = "FACETOPT_EVAL_MODEL_BASE_URL"
JUDGE_URL_ENV = "FACETOPT_EVAL_JUDGE_BASE_URL"
BRAINTRUST_TIMEOUT_ENV = "FACETOPT_EVAL_BRAINTRUST_TIMEOUT"  # seconds per Braintrust request
REPLAY_ENV = "FACETOPT_EVAL_REPLAY"  # a results file whose rows are logged again, not re-run


class EndpointSpec(BaseModel):
    """An endpoint without its key (the key travels in an environment variable)."""

    role: str
    model: str
    base_url: str | None = None
    simulated: bool = False

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointSpec:
        return cls(
            role=endpoint.role,
            model=endpoint.model,
            base_url=without_credentials(endpoint.base_url) if endpoint.base_url else None,
            simulated=endpoint.simulated,
        )

    def endpoint(self, key: str | None, base_url: str | None = None) -> Endpoint:
        """The endpoint again, with its key and (when it had credentials in it) its full base URL."""
        secret = SecretStr(key) if key else None
        url = base_url or self.base_url
        return Endpoint(self.role, self.model, url, secret, simulated=self.simulated)  # type: ignore[arg-type]


class EvalConfig(BaseModel):
    """What the parent hands the eval process (no secret in here: it is written to disk)."""

    project: str
    project_id: str | None = None
    experiment_name: str
    facet_model: EndpointSpec
    judge: EndpointSpec
    max_tokens: int
    request_timeout: float
    call_deadline: float = 600.0  # seconds one call may keep being retried (the rate-limit policy)
    max_retries: int | None = None  # None: retry until the deadline
    concurrency: int
    store_path: str | None = None  # the local store holding the call cache; None: no cache
    use_cache: bool = True  # False (--no-cache): call again, and store the fresh results
    trials: int = 1
    no_send_logs: bool = True
    rows_file: str
    facets: list[FacetPrompt]
    metadata: dict[str, Any] = Field(default_factory=dict)
    # cost: the price table (dollars per million tokens) and --max-cost over facet model and judge
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    max_cost: float | None = None

    def facet(self, name: str) -> FacetPrompt | None:
        folded = name.casefold()
        return next((f for f in self.facets if f.facet_name.casefold() == folded), None)


def load_config(environ: Mapping[str, str]) -> EvalConfig:
    path = environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(
            f"{CONFIG_ENV} is not set",
            hint="run the eval with `facetopt eval`; it prepares the rows and configuration",
        )
    return EvalConfig.model_validate_json(Path(path).read_text(encoding="utf-8"))


def travelling_metadata(facets: list[FacetPrompt]) -> dict[str, Any]:
    """Experiment metadata that lets any machine with project access read the run as facetopt
    does: facetopt's version (it ran it) and each prompt's text keyed by its sha256."""
    from facetopt import __version__

    return {
        FACETOPT_VERSION_KEY: __version__,
        PROMPT_TEXTS_KEY: {facet.prompt_sha256: facet.prompt_text for facet in facets},
        # set to the run's final status when facetopt records its end (eval/status.py)
        RUN_STATUS_KEY: RUNNING,
    }
