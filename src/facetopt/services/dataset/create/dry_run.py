"""`dataset create --dry-run`: what labelling the selected calls would cost (cached labels are free),
what would be labelled per facet and bucket, and which files the run folder holds."""

from __future__ import annotations

from pathlib import Path

from facetopt.clients import artifacts
from facetopt.clients.llm.client import ChatRequest, Endpoint
from facetopt.clients.local.store import LocalStore
from facetopt.domain.cost import RoleUsage
from facetopt.domain.dataset import DatasetCreateSummary
from facetopt.domain.spans import FacetCall
from facetopt.services.cost import estimate_labelling
from facetopt.services.dataset.create.spans import counts_by_facet
from facetopt.services.dataset.labelling import label_request
from facetopt.settings import Settings


def labelling_estimate(settings: Settings, selected: list[FacetCall], endpoint: Endpoint) -> RoleUsage:
    """What labelling `selected` would cost: cached labels are free, the rest estimated from their text."""
    requests: dict[str, ChatRequest] = {}
    for call in selected:
        request = label_request(call, endpoint, settings.ground_truth_max_tokens)
        requests.setdefault(request.key, request)
    cached: dict[str, str] = {}
    if settings.store_path.exists():
        with LocalStore(settings.store_path, read_only=True) as store:
            cached = store.cached_labels(list(requests))
    to_pay = [r.messages for key, r in requests.items() if key not in cached]
    return estimate_labelling("labeller", endpoint.model, settings, to_pay, len(requests) - len(to_pay))


def finish_dry_run(
    summary: DatasetCreateSummary, selected: list[FacetCall], run_dir: Path
) -> DatasetCreateSummary:
    summary.would_label = {
        k: dict(v) for k, v in counts_by_facet(selected, "weak_bucket")["per_facet"].items()
    }
    summary.dry_run_wrote = sorted([*(p.name for p in run_dir.iterdir()), "summary.json"])
    artifacts.write_json(run_dir / "summary.json", summary)
    return summary
