"""What `dataset create` is asked to do, and the checks that only the request can make."""

from __future__ import annotations

from dataclasses import dataclass, field

from facetopt.errors import InputError
from facetopt.services.backends import Backend
from facetopt.services.backends.sources import SourceQuery, SpanSource
from facetopt.settings import Settings


@dataclass
class CreateRequest:
    source: SpanSource
    backend: Backend
    target_project: str
    dataset: str
    query: SourceQuery
    facet_name: str | None = None
    positive_limit: int = 100
    negative_limit: int = 100
    validation_fraction: float = 0.2
    test_fraction: float = 0.0
    dry_run: bool = False
    upload: bool = True  # write the rows to the backend's dataset (False: --skip-upload on Braintrust)
    notes: list[str] = field(default_factory=list)


def check_request(req: CreateRequest, settings: Settings) -> None:
    """What the settings' own checks cannot see: values that are each fine but select nothing."""
    if settings.ground_truth_concurrency < 1:
        raise InputError(
            f"--concurrency must be at least 1 (got {settings.ground_truth_concurrency})",
            hint="the default is 128 labelling requests in flight",
        )
    if req.positive_limit == 0 and req.negative_limit == 0:
        raise InputError(
            "--positive-limit and --negative-limit are both 0: nothing would be labelled",
            hint="the defaults are 100 each; set at least one above 0",
        )
    if req.query.limit == 0:
        raise InputError(
            "--limit 0 reads no source span", hint="drop --limit (default 5 x (positive + negative))"
        )
