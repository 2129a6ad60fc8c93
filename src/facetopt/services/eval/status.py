"""What an eval run's record says about it: `complete` only when every selected row has a result
and the command ended well; otherwise `partial`, `failed` or `interrupted`, with the cause.

A row whose model call failed has a result (the error, counted); a row the runner never finished,
a missing trial or a call `--max-cost` kept from being sent has none. A finished run is first
registered as failed ("the command did not finish recording the run") and set to its status only
once everything after the runner (the summary, the look at test) is written, so a command that dies
there (a full disk) leaves a record that says so. On Braintrust the experiment's metadata carries
the same status (`facetopt_status`, "running" until the end), so a listing from any machine knows
an experiment that never recorded its end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from facetopt.domain.cost import NOT_SENT_COST
from facetopt.domain.experiments import (
    EvalRow,
    ExperimentRecord,
    RunStatus,
)
from facetopt.errors import FacetoptError
from facetopt.services.eval.results import NO_RESULT
from facetopt.services.experiments.run_marks import mark_braintrust
from facetopt.settings import Settings

log = logging.getLogger("facetopt.eval")

RECORDING_UNFINISHED = "the command did not finish recording the run"


def run_status(rows: list[EvalRow]) -> tuple[RunStatus, str | None]:
    """The status of a run the runner finished, from its rows: failed when every row failed,
    partial when some have no result, else complete."""
    if not rows:
        return "failed", "no row was selected"
    errored = [r for r in rows if r.error]
    if len(errored) == len(rows):
        first = errored[0]
        return "failed", f"every row failed ({len(rows)} rows), e.g. {first.id}: {(first.error or '')[:200]}"
    unfinished = sum(1 for r in rows if r.error == NO_RESULT or r.metadata.get("missing_trials"))
    not_sent = sum(1 for r in rows if r.error == NOT_SENT_COST)
    causes = []
    if unfinished:
        causes.append(f"{unfinished} of {len(rows)} rows have no result from the eval runner")
    if not_sent:
        causes.append(f"--max-cost kept {not_sent} of {len(rows)} rows from being sent")
    if causes:
        return "partial", "; ".join(causes)
    return "complete", None


def error_cause(error: BaseException) -> str:
    """The cause recorded for a command that failed after the runner finished."""
    if isinstance(error, FacetoptError):
        return f"the command failed after the eval: {error.message}"[:300]
    return f"the command failed after the eval: {type(error).__name__}: {error}"[:300]


def set_status(
    settings: Settings,
    record: ExperimentRecord,
    status: RunStatus,
    cause: str | None,
    warn: Callable[[str], None] | None = None,
) -> ExperimentRecord:
    """Record a run's final status in the registry and, when it was logged there, in Braintrust's
    experiment metadata. A failure to write Braintrust's copy is a warning: the registry stands."""
    from facetopt.clients.local.store import LocalStore

    with LocalStore(settings.store_path) as store:
        updated = store.update_experiment(record.experiment_id, status=status, status_cause=cause)
    if record.backend == "braintrust" and not record.stored_locally:
        try:
            mark_braintrust(settings, record.experiment_id, status, cause)
        except FacetoptError as error:
            if warn is not None:
                warn(
                    f"could not record the run's status ({status}) in Braintrust's experiment metadata: "
                    f"{error.message}; this machine's registry has it, other machines will list the "
                    "experiment as unfinished"
                )
    return updated or record.model_copy(update={"status": status, "status_cause": cause})
