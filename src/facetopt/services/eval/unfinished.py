"""An eval that did not finish cleanly: interrupted (Ctrl-C, SIGTERM, SIGHUP), past its flush
deadline, refused by Braintrust, or failed in the runner.

Nothing paid for is lost: every scored row in the results file is stored locally under the
run's registry entry (on the local backend too, under a facetopt id), which is `interrupted` when
a signal stopped it, else `partial` when the experiment was created in Braintrust (with the rows
that reached it) and `failed` otherwise, with the cause. The error names what stopped the run, the
experiment (name, id, rows in it) and the command that logs the kept rows later
(`facetopt eval --resume RUN`; on the local backend, the same command again). A later run with the
same experiment name supersedes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from facetopt.clients.braintrust.activity import ACTIVITY_FILE, BraintrustActivity, read_activity
from facetopt.clients.braintrust.bt_runner import STOPPED_BY_DEADLINE, RunnerOutcome
from facetopt.domain.experiments import ExperimentRecord, RunStatus
from facetopt.errors import BraintrustError, FacetoptError, Interrupted, redact
from facetopt.services.eval.launch import runner_failure
from facetopt.services.eval.plan import EvalPlan
from facetopt.services.eval.record import EvalSummary, _now_iso, record_run, store_experiment
from facetopt.services.eval.results import NO_RESULT, eval_rows, read_results

SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGHUP": 129, "SIGTERM": 143}


def conclude(
    plan: EvalPlan,
    runner: str,
    outcome: RunnerOutcome,
    run_dir: Path,
    warn: Callable[[str], None],
    supersedes: ExperimentRecord | None = None,
) -> EvalSummary:
    """Record a finished run; for any other outcome keep what was scored and raise the error."""
    if outcome.ok:
        return record_run(plan, runner, outcome, run_dir, warn, supersedes)
    activity = read_activity(run_dir / ACTIVITY_FILE)
    scored = read_results(run_dir / "results.jsonl")
    record = None
    # a run that scored nothing does not supersede the unfinished run it meant to replace: that
    # one still holds its rows, and stays the run to resume
    earlier = None if scored else supersedes
    if scored or activity.created:
        status, cause = unfinished_status(plan, runner, outcome, run_dir, activity)
        record = keep_unfinished(
            plan, runner, run_dir, activity, supersedes if scored else None, status, cause
        )
    raise unfinished_error(plan, runner, outcome, run_dir, activity, record, len(scored), earlier)


def unfinished_status(
    plan: EvalPlan, runner: str, outcome: RunnerOutcome, run_dir: Path, activity: BraintrustActivity
) -> tuple[RunStatus, str]:
    """interrupted (a signal), partial (Braintrust holds part of it) or failed, with the cause."""
    cause = stop_cause(plan, outcome, activity)
    if cause is None:
        cause = runner_failure(outcome, runner, run_dir, plan.secrets()).message
    cause = redact(cause, plan.secrets())[:300]
    if outcome.interrupted and outcome.stopped_by != STOPPED_BY_DEADLINE:
        return "interrupted", cause
    return ("partial" if activity.created else "failed"), cause


def keep_unfinished(
    plan: EvalPlan,
    runner: str,
    run_dir: Path,
    activity: BraintrustActivity,
    supersedes: ExperimentRecord | None,
    status: RunStatus = "partial",
    cause: str | None = None,
) -> ExperimentRecord:
    """The registry entry of an unfinished run, with every scored row stored locally."""
    rows = [
        r
        for r in eval_rows(plan.rows, read_results(run_dir / "results.jsonl"), plan.settings.trials)
        if r.metadata.get("missing_trials") is None and r.error != NO_RESULT
    ]
    record = ExperimentRecord(
        experiment_id=activity.experiment_id or str(uuid.uuid4()),
        experiment_name=activity.experiment_name or plan.name,
        label=plan.label,
        backend=plan.backend,
        project=plan.project,
        model=plan.model.model,
        dataset=plan.dataset,
        dataset_project=plan.dataset_project,
        split=plan.split,
        filters=plan.filters,
        prompt_file=plan.prompt_file,
        prompt_hashes=plan.prompt_hashes,
        row_count=len(rows),
        error_count=sum(1 for r in rows if r.error),
        created=_now_iso(),
        runner=runner,
        simulated_roles=plan.roles,
        stored_locally=True,
        status=status,
        status_cause=cause,
        logged_rows=(activity.logged_rows if activity.created else 0) if plan.send_logs else None,
        selected_rows=len(plan.rows) * plan.settings.trials,
        scored_results=len(read_results(run_dir / "results.jsonl")),
        run_dir=str(run_dir),
    )
    store_experiment(plan.settings, record, rows, plan.facets, supersedes)
    return record


def unfinished_error(
    plan: EvalPlan,
    runner: str,
    outcome: RunnerOutcome,
    run_dir: Path,
    activity: BraintrustActivity,
    record: ExperimentRecord | None,
    scored: int,
    earlier: ExperimentRecord | None = None,
) -> FacetoptError:
    total = len(plan.rows) * plan.settings.trials
    cause = stop_cause(plan, outcome, activity)
    where = []
    if activity.created:
        where.append(
            f"experiment {activity.experiment_name!r} ({activity.experiment_id}) was created in "
            f"Braintrust and holds {activity.logged_rows} of {total} rows: recorded as "
            f"{record.status if record is not None else 'partial'}"
        )
    elif plan.send_logs:
        where.append("no experiment was created in Braintrust")
    if record is None:
        hint = "re-run the same command; nothing was recorded for this run"
        if scored and not plan.send_logs:
            hint += f" (the {scored} scored row(s) are in {run_dir / 'results.jsonl'})"
        if cause is None:
            return runner_failure(outcome, runner, run_dir, plan.secrets())
    elif scored == 0:
        hint = "this run scored no row, so there is nothing of it to resume; " + (
            f"`facetopt eval --resume {Path(earlier.run_dir).name}` logs the {earlier.row_count} row(s) "
            f"the earlier unfinished run {earlier.experiment_name!r} scored, and runs the rest"
            if earlier is not None and earlier.run_dir and earlier.row_count
            else "re-run the same command"
        )
    elif not plan.send_logs:
        hint = (
            f"the {scored} scored row(s) are kept in {run_dir} (results.jsonl, and the local store as "
            f"{record.status}); re-run the same command: what was paid is served from the call cache"
        )
    else:
        hint = (
            f"the {scored} scored row(s) are kept in {run_dir} (results.jsonl, and the local store as "
            f"{record.status}); `facetopt eval --resume {run_dir.name}` logs them"
            + (" and runs the rest" if scored < total else "")
            + " without paying again"
        )
    if cause is None:
        failure = runner_failure(outcome, runner, run_dir, plan.secrets())
        if not plan.send_logs:
            hint = f"{failure.hint}; {hint}" if failure.hint else hint
        return type(failure)("; ".join([failure.message, *where]), hint=hint)
    message = redact("; ".join([cause, *where]), plan.secrets())
    if outcome.interrupted:
        return Interrupted(message, hint=hint, exit_code=SIGNAL_EXIT_CODES.get(outcome.stopped_by or "", 130))
    return BraintrustError(message, hint=hint)


def stop_cause(plan: EvalPlan, outcome: RunnerOutcome, activity: BraintrustActivity) -> str | None:
    """What stopped the run, when it was the deadline, a signal or Braintrust (None: the runner failed)."""
    refusal = activity.refused_log_write or (activity.refusals[-1] if activity.refusals else None)
    if outcome.stopped_by == STOPPED_BY_DEADLINE:
        cause = (
            f"Braintrust did not take the eval's logs within the flush deadline "
            f"({plan.settings.flush_deadline:g}s, --flush-deadline)"
        )
        if refusal is not None:
            cause += f"; last failure: {refusal.describe()}"
    elif outcome.interrupted:
        cause = f"interrupted ({outcome.stopped_by}): the eval runner was stopped"
    elif refusal is not None and (activity.created or refusal.route.endswith("/logs3")):
        cause = f"Braintrust refused the eval's request: {refusal.describe()}"
    elif refusal is not None:
        cause = f"Braintrust failed the eval's request: {refusal.describe()}"
    else:
        cause = None
    return cause
