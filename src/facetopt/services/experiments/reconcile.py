"""A partial run whose queued writes landed in Braintrust after facetopt gave up on them.

An eval stopped at its flush deadline (or by a refused log write) after scoring every row is
registered `partial` with the rows Braintrust had confirmed. The SDK may still deliver the rest.
When a command next reads the registry on the Braintrust backend, each such run's root rows are
counted in Braintrust (root spans with their output); the registry's `logged_rows` follows what
Braintrust holds, and a run whose every (row, trial) is now there becomes `complete`, in the
registry and in the experiment's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import ExperimentRecord
from facetopt.errors import FacetoptError
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.services.backends import Backend

log = logging.getLogger("facetopt.experiments")


def awaiting_braintrust(record: ExperimentRecord, backend: str) -> bool:
    """A partial run of this backend that scored every (row, trial) and lacks only Braintrust's rows."""
    return (
        record.status == "partial"
        and record.backend == backend
        and not record.superseded_by
        and record.logged_rows is not None
        and record.selected_rows is not None
        and record.scored_results == record.selected_rows
        and record.logged_rows < record.selected_rows
    )


def reconcile_partial_runs(
    settings: Settings, backend: Backend, announce: Callable[[str], None] | None = None
) -> list[ExperimentRecord]:
    """Update the registry's partial runs from what Braintrust now holds; the runs changed."""
    if not backend.remote or not settings.store_path.exists():
        return []
    with LocalStore(settings.store_path, read_only=True) as store:
        waiting = [r for r in store.experiments() if awaiting_braintrust(r, backend.name)]
    changed = []
    for record in waiting:
        try:
            held = backend.confirmed_results(record.experiment_id)
        except FacetoptError as error:  # the command's own reads will say what is wrong
            log.debug("could not count the rows of %s: %s", record.experiment_id, error.message)
            continue
        if held is None or held <= (record.logged_rows or 0):
            continue
        update: dict[str, object] = {"logged_rows": held}
        total = record.selected_rows or 0
        if held >= total:
            update.update(status="complete", status_cause=None, logged_rows=None)
        with LocalStore(settings.store_path) as store:
            updated = store.update_experiment(record.experiment_id, **update)
        if updated is None:
            continue
        changed.append(updated)
        if updated.complete:
            _mark_complete(settings, updated)
        if announce is not None:
            announce(reconciled_note(record, updated, held))
    return changed


def reconciled_note(before: ExperimentRecord, after: ExperimentRecord, held: int) -> str:
    name = f"experiment {before.experiment_name!r} ({before.experiment_id})"
    if after.complete:
        return (
            f"{name}: all {held} of its rows have reached Braintrust since it stopped "
            f"({before.status_cause or 'partial'}); recorded as complete"
        )
    return f"{name}: Braintrust now holds {held} of its {before.selected_rows} rows; still partial"


def _mark_complete(settings: Settings, record: ExperimentRecord) -> None:
    from facetopt.services.experiments.run_marks import mark_braintrust

    try:
        mark_braintrust(settings, record.experiment_id, "complete", None)
    except FacetoptError as error:
        log.debug("could not mark %s complete in Braintrust: %s", record.experiment_id, error.message)
