"""Recording a finished eval: per-row results from the results file, the experiment registry entry
(with its prompt hashes and filters), the rows when kept locally, and the command's summary."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from facetopt.clients import artifacts
from facetopt.clients.braintrust.bt_runner import RunnerOutcome
from facetopt.clients.llm.endpoints import dead_endpoint_error
from facetopt.clients.llm.rate_limit import ENDPOINT_DEAD
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import FacetPrompt
from facetopt.domain.cost import NOT_SENT_COST, RoleUsage
from facetopt.domain.experiments import EvalRow, ExperimentRecord, FacetMetrics, RunStatus
from facetopt.domain.next_steps import NextStep
from facetopt.errors import EvalRunError, FacetoptError
from facetopt.facets.decide.metrics import metrics_by_facet
from facetopt.services.cost import max_cost_error, reported_usage
from facetopt.services.eval.plan import EvalPlan
from facetopt.services.eval.results import eval_rows, read_experiment, read_results
from facetopt.services.eval.status import RECORDING_UNFINISHED, error_cause, run_status, set_status
from facetopt.services.experiments.budget import budget_warnings, validation_evals
from facetopt.services.experiments.holdout import record_test_touch
from facetopt.settings import Settings


class EvalSummary(BaseModel):
    """What `facetopt eval` reports (and `--json` prints)."""

    experiment_id: str
    experiment_name: str
    label: str | None = None  # --name
    url: str | None = None
    backend: str
    runner: str
    project: str
    model: str
    model_endpoint: str  # base URL or "simulated", never a key
    judge_model: str
    judge_endpoint: str
    simulated_roles: list[str] = Field(default_factory=list)
    dataset: str
    dataset_project: str
    split: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    prompt_file: str
    prompt_hashes: dict[str, str] = Field(default_factory=dict)
    rows: int = 0
    trials: int = 1
    errors: int = 0
    factuality_errors: int = 0
    # (row, trial)s whose model output / Factuality verdict came from the call cache, not a new call
    model_outputs_from_cache: int = 0
    judge_verdicts_from_cache: int = 0
    stored_locally: bool = True
    run_dir: str
    seconds: float = 0.0
    metrics: list[FacetMetrics] = Field(default_factory=list)
    failed_rows: list[dict[str, str]] = Field(default_factory=list)  # first few {id, error}
    validation_evals: dict[str, int] = Field(default_factory=dict)  # lifetime, per facet (this run included)
    usage: list[RoleUsage] = Field(default_factory=list)  # tokens and estimated dollars per role
    warnings: list[str] = Field(default_factory=list)
    supersedes: str | None = None  # id of an unfinished earlier experiment this run replaces
    notes: list[str] = Field(default_factory=list)  # said once per output root (e.g. bt not found)
    # complete, partial or failed (status.py), and why when not complete
    status: str = "complete"
    status_cause: str | None = None
    next_steps: list[NextStep] = Field(default_factory=list)  # what to do now (services/next_steps.py)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def record_run(
    plan: EvalPlan,
    runner: str,
    outcome: RunnerOutcome,
    run_dir: Path,
    warn: Callable[[str], None],
    supersedes: ExperimentRecord | None = None,
) -> EvalSummary:
    """EvalRows from the results file; the registry entry, local rows and prompt history; the summary.
    `supersedes`: an unfinished earlier run this one replaces (marked so in the registry)."""

    def warned(message: str) -> None:
        plan.warnings.append(message)
        warn(message)

    records = read_results(run_dir / "results.jsonl")
    rows = eval_rows(plan.rows, records, plan.settings.trials)
    usage = eval_usage(plan, records)
    experiment_id, name, url, stored_locally = str(uuid.uuid4()), plan.name, None, True
    if plan.send_logs:
        # the id the eval wrote from the SDK's summary; bt drops a summary line it cannot parse
        logged = read_experiment(run_dir / "results.jsonl")
        line = outcome.summaries[-1] if outcome.summaries else None
        if logged is not None:
            experiment_id, stored_locally = str(logged["id"]), False
            name = logged.get("name") or name
            same = line is not None and line.experiment_id == experiment_id
            url = logged.get("url") or (line.experiment_url if same and line else None)
        else:
            warned("the eval reported no experiment id: the run is stored locally under a facetopt id")
    errors = [r for r in rows if r.error]
    judge_errors = [(r, (r.metadata.get("scorer_errors") or {}).get("Factuality")) for r in rows]
    judged = [r for r, e in judge_errors if e is not None and e != NOT_SENT_COST]
    not_sent = sum(1 for r in errors if r.error == NOT_SENT_COST)
    not_sent_judge = sum(1 for _, e in judge_errors if e == NOT_SENT_COST)
    if not_sent or not_sent_judge:
        warned(eval_max_cost_warning(plan.settings.max_cost, not_sent, not_sent_judge, usage))
    if judged:
        example = str(judged[0].metadata["scorer_errors"]["Factuality"])[:200]
        warned(f"Factuality failed on {len(judged)} row(s) (score left empty), e.g. {example}")
    common = dict(
        experiment_name=name,
        label=plan.label,
        url=url,
        backend=plan.backend,
        project=plan.project,
        model=plan.model.model,
        dataset=plan.dataset,
        dataset_project=plan.dataset_project,
        split=plan.split,
        filters=plan.filters,
        prompt_file=plan.prompt_file,
        prompt_hashes=plan.prompt_hashes,
        simulated_roles=plan.roles,
        stored_locally=stored_locally,
        runner=runner,
    )
    status, cause = run_status(rows)
    # registered as failed until everything below is written: a command that dies on the way
    # (a full disk) leaves a record that says so
    record = ExperimentRecord(
        experiment_id=experiment_id,
        test_facets=plan.test_facets,
        row_count=len(rows),
        error_count=len(errors),
        created=_now_iso(),
        run_dir=str(run_dir),
        status="failed" if status == "complete" else status,
        status_cause=cause or RECORDING_UNFINISHED,
        selected_rows=len(plan.rows) * plan.settings.trials,
        scored_results=len(records),
        **common,
    )
    store_experiment(plan.settings, record, rows if stored_locally else None, plan.facets, supersedes)
    try:
        summary = _finish(plan, record, (status, cause), rows, records, usage, outcome, warned, supersedes)
    except BaseException as error:
        if not isinstance(error, KeyboardInterrupt):
            _record_failure(plan, record, error_cause(error), warn)
        else:
            _record_failure(plan, record, "interrupted while recording the run", warn, "interrupted")
        raise
    dead = _dead_endpoint(errors, judged)
    if dead is not None:  # the command ends in that error: the run did not end well
        status, cause = "failed", dead.message
    set_status(plan.settings, record, status, cause, warn)
    if dead is not None:
        raise dead
    if rows and not_sent == len(rows):
        raise max_cost_error(plan.settings.max_cost, "facet model", not_sent)
    if rows and len(errors) == len(rows):
        raise EvalRunError(
            f"every row failed ({len(errors)} rows), e.g. {errors[0].id}: {errors[0].error}",
            hint=f"check the facet model endpoint (--api-base, its key); the run is in {run_dir}; "
            "it is recorded as failed, so `latest` and `previous` pass over it",
        )
    return summary


def _record_failure(
    plan: EvalPlan,
    record: ExperimentRecord,
    cause: str,
    warn: Callable[[str], None],
    status: RunStatus = "failed",
) -> None:
    """Best effort on the way out of a failed command: the record already says failed, and a
    store that cannot be written now (the same full disk) must not hide the first error."""
    try:
        set_status(plan.settings, record, status, cause, warn)
    except Exception:  # noqa: BLE001 - the error being raised is the one to report
        pass


def _finish(
    plan: EvalPlan,
    record: ExperimentRecord,
    final: tuple[RunStatus, str | None],
    rows: list[EvalRow],
    records: list[dict[str, Any]],
    usage: list[RoleUsage],
    outcome: RunnerOutcome,
    warned: Callable[[str], None],
    supersedes: ExperimentRecord | None,
) -> EvalSummary:
    """Everything after the registry entry: the budget, the look at test, the summary file."""
    experiment_id, run_dir = record.experiment_id, Path(record.run_dir or ".")
    errors = [r for r in rows if r.error]
    judged = [
        r
        for r in rows
        if (r.metadata.get("scorer_errors") or {}).get("Factuality") not in (None, NOT_SENT_COST)
    ]
    common = record.model_dump(
        include={
            "experiment_name",
            "label",
            "url",
            "backend",
            "project",
            "model",
            "dataset",
            "dataset_project",
            "split",
            "filters",
            "prompt_file",
            "prompt_hashes",
            "simulated_roles",
            "stored_locally",
            "runner",
        }
    )
    if final[0] == "partial":
        warned(
            f"this run is recorded as partial ({final[1]}): `latest` and `previous` pass over it and the "
            "validation budget does not count it; re-run the same command to finish it (paid calls are cached)"
        )
    counts = {}
    if reads_validation(plan.split):
        counts = validation_evals_of(plan, record if final[0] == "complete" else None)
    for message in budget_warnings(counts, plan.dataset):
        warned(message)
    if plan.test_hashes and any(not r.error for r in rows):  # a run whose every row failed saw nothing
        record_test_touch(
            plan.settings,
            plan.dataset_project,
            plan.dataset,
            plan.test_hashes,
            experiment_id,
            "eval",
            plan.force,
        )
    summary = EvalSummary(
        experiment_id=experiment_id,
        model_endpoint=plan.model.label,
        judge_model=plan.judge.model,
        judge_endpoint=plan.judge.label,
        rows=len(rows),
        trials=plan.settings.trials,
        errors=len(errors),
        factuality_errors=len(judged),
        model_outputs_from_cache=sum(1 for r in records if r.get("model_from_cache")),
        judge_verdicts_from_cache=sum(1 for r in records if r.get("judge_from_cache")),
        run_dir=str(run_dir),
        seconds=round(outcome.seconds, 2),
        metrics=metrics_by_facet(rows),
        failed_rows=[{"id": r.id, "error": r.error or ""} for r in errors[:5]],
        validation_evals=counts,
        usage=usage,
        warnings=plan.warnings,
        supersedes=supersedes.experiment_id if supersedes else None,
        notes=plan.notes,
        status=final[0],
        status_cause=final[1],
        **common,
    )
    artifacts.write_json(run_dir / "summary.json", summary)
    return summary


def _dead_endpoint(errors: list[Any], judged: list[Any]) -> FacetoptError | None:
    """The error that ends the eval when the facet model or the judge was judged dead (rate_limit.py)."""
    marker = f"{ENDPOINT_DEAD}: "
    for role, texts in (
        ("facet_model", [r.error for r in errors]),
        ("judge", [str(r.metadata["scorer_errors"]["Factuality"]) for r in judged]),
    ):
        for text in texts:
            if text and marker in text:
                return dead_endpoint_error(role, text.split(marker, 1)[1])
    return None


def eval_usage(plan: EvalPlan, records: list[dict[str, Any]]) -> list[RoleUsage]:
    """Tokens and dollars per role from the results file: each call's reply usage as the runner
    recorded it; outputs and verdicts served from the call cache count as free."""
    judge_ok = [
        r["judge_usage"]
        for r in records
        if r.get("judge_usage") and "Factuality" not in (r.get("scorer_errors") or {})
    ]
    settings = plan.settings
    return [
        reported_usage(
            "facet model",
            plan.model.model,
            settings,
            [r["model_usage"] for r in records if r.get("model_usage") is not None and not r.get("error")],
            cached=sum(1 for r in records if r.get("model_from_cache")),
        ),
        reported_usage(
            "judge",
            plan.judge.model,
            settings,
            judge_ok,
            cached=sum(1 for r in records if r.get("judge_from_cache")),
        ),
    ]


def eval_max_cost_warning(
    max_cost: float | None, model_calls: int, judge_calls: int, usage: list[RoleUsage]
) -> str:
    spent = sum(u.cost_usd for u in usage)
    return (
        f"--max-cost ${max_cost or 0:g} reached: {model_calls} facet model and {judge_calls} judge calls "
        f"were not sent (about ${spent:.4f} spent; those rows are left unscored); what was paid is kept "
        "in the call cache, and a re-run pays only for the rest"
    )


def reads_validation(split: str | None) -> bool:
    """No split asked (train and validation) or validation among those asked."""
    return not split or "validation" in [s.strip().casefold() for s in split.split(",")]


def validation_evals_of(plan: EvalPlan, this_run: ExperimentRecord | None) -> dict[str, int]:
    """Lifetime validation evals of each facet of the run on its dataset: the complete runs, and
    `this_run` (which is registered as complete only once the command has finished)."""
    with LocalStore(plan.settings.store_path, read_only=True) as store:
        runs = store.validation_runs(plan.dataset)
    if this_run is not None:
        runs.append(dict(this_run.prompt_hashes))
    return validation_evals(runs, [f.facet_name for f in plan.facets])


def store_experiment(
    settings: Settings,
    record: ExperimentRecord,
    rows: list[EvalRow] | None,
    facets: list[FacetPrompt],
    supersedes: ExperimentRecord | None = None,
) -> None:
    """The registry entry (always), the rows (when kept locally) and each facet prompt's text."""
    with LocalStore(settings.store_path) as store:
        store.add_experiment(record, rows)
        if supersedes is not None and supersedes.experiment_id != record.experiment_id:
            store.add_experiment(supersedes.model_copy(update={"superseded_by": record.experiment_id}))
        for facet in facets:
            store.remember_prompt(facet.prompt_sha256, facet.facet_name, facet.prompt_text)
