"""What settings fall back to: the default values, the per-model defaults (request timeout and rows
in flight), and the price format of FACET_OPTIMIZER_PRICES. docs/models.md documents them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OUTPUT_ROOT = Path(".local/facet-optimizer")
BACKENDS = ("braintrust", "local")
DEFAULT_SOURCE_MODELS = ("brain-facet-latest", "brain-facet-1")
DEFAULT_PROXY_URL = "https://braintrustproxy.com/v1"
SIMULATED_BASE_URL = "simulated://"
DEFAULT_PROJECT = "Facet Optimizer"  # the original's target and eval project
DEFAULT_EVAL_DATASET = "Facet groundtruth"  # the original eval's dataset


@dataclass(frozen=True)
class ModelDefaults:
    request_timeout: float  # seconds per request
    concurrency: int  # eval rows in flight


# per-model defaults, used when --request-timeout / --concurrency (or their variables) are not
# given; docs/models.md documents them. brain-facet-2 is slow and unstable.
MODEL_DEFAULTS: dict[str, ModelDefaults] = {
    "brain-facet-1": ModelDefaults(request_timeout=120.0, concurrency=16),
    "brain-facet-2": ModelDefaults(request_timeout=300.0, concurrency=4),
}


def parse_prices(text: str | None) -> dict[str, tuple[float, float]]:
    """`model=input/output,...` (dollars per million tokens) -> {model: (input, output)}."""
    prices: dict[str, tuple[float, float]] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        model, _, pair = part.partition("=")
        given, _, out = pair.partition("/")
        try:
            values = (float(given), float(out))
        except ValueError:
            raise ValueError(f"price {part.strip()!r} is not model=input/output") from None
        if not model.strip() or min(values) < 0 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"price {part.strip()!r} is not model=input/output with non-negative numbers")
        prices[model.strip()] = values
    return prices
