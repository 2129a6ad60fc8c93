"""`facetopt dataset create`: facet LLM spans -> labelled, balanced, split ground-truth rows.

Entry points: `pipeline.create_dataset` (one function per step, in order), `request.CreateRequest`.
Steps: `spans` (query, parse, final facets, sample), `rows` (label, split, merge repeats, report),
`dry_run` (the estimate instead of labelling). The names other modules use are re-exported here.
May import: clients, facets, domain, settings, errors, services.progress, services.backends,
services.cost, services.dataset (sources, labelling).
"""

from facetopt.services.dataset.create.pipeline import create_dataset, load_summary
from facetopt.services.dataset.create.request import CreateRequest, check_request
from facetopt.services.dataset.create.rows import SIMULATED_PREFIX, deduplicated

__all__ = [
    "SIMULATED_PREFIX",
    "CreateRequest",
    "check_request",
    "create_dataset",
    "deduplicated",
    "load_summary",
]
