"""A run's status in its Braintrust experiment's metadata (`facetopt_status`, with its cause), so
that a listing of the project on any machine knows how the run ended."""

from __future__ import annotations

from facetopt.domain.experiments import RUN_STATUS_CAUSE_KEY, RUN_STATUS_KEY, RunStatus
from facetopt.settings import Settings


def mark_braintrust(settings: Settings, experiment_id: str, status: RunStatus, cause: str | None) -> None:
    """PATCH the experiment's metadata (Braintrust deep-merges it) with the run's status."""
    from facetopt.clients.braintrust import connect
    from facetopt.clients.braintrust.api import request_json

    conn = connect(
        settings.braintrust_api_key,
        app_url=settings.braintrust_app_url,
        org_name=settings.target_org,
        api_url_override=settings.braintrust_api_url,
    )
    request_json(
        conn,
        "PATCH",
        f"/v1/experiment/{experiment_id}",
        json={"metadata": {RUN_STATUS_KEY: status, RUN_STATUS_CAUSE_KEY: cause}},
        what=f"recording the status of experiment {experiment_id}",
    )
