"""`facetopt eval --resume RUN`: log an unfinished eval run's scored rows to Braintrust.

The eval run folder `RUN` (a name under `<output root>/evals/`, or a path) holds the rows, the
config and the results file of the run. The resumed run hands the runner the same rows and config
with the old results file to replay: a row with a result is logged with its recorded output and
scores (no model or judge call); a row without one is evaluated as usual. It creates a new
experiment that supersedes the unfinished one in the registry. Keys come from the current
settings, never from the run folder (which holds none).
"""

from __future__ import annotations

from pathlib import Path

from facetopt.clients.llm.endpoints import resolve_facet_model, resolve_judge
from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import ExperimentRecord
from facetopt.errors import InputError, NotFoundError
from facetopt.services.eval.config import EvalConfig
from facetopt.services.eval.plan import EvalPlan
from facetopt.services.eval.results import read_results
from facetopt.services.eval.task import read_rows
from facetopt.settings import Settings


def find_run_dir(settings: Settings, run: str) -> Path:
    candidates = [Path(run), settings.output_root / "evals" / run]
    for candidate in candidates:
        if (candidate / "config.json").is_file() and (candidate / "rows.jsonl").is_file():
            return candidate
    raise NotFoundError(
        f"no eval run {run!r} (looked for config.json and rows.jsonl in {candidates[-1]})",
        hint="pass the eval run folder named in the error of the run to resume "
        f"(a name under {settings.output_root / 'evals'}, or its path)",
    )


def registry_entry(settings: Settings, run_dir: Path) -> ExperimentRecord | None:
    """The registry's entry for the run recorded in `run_dir`, if any."""
    if not settings.store_path.exists():
        return None
    with LocalStore(settings.store_path, read_only=True) as store:
        records = store.experiments()
    wanted = str(run_dir.resolve())
    return next((r for r in records if r.run_dir and str(Path(r.run_dir).resolve()) == wanted), None)


def plan_resume(settings: Settings, run: str) -> tuple[EvalPlan, Path, ExperimentRecord | None]:
    """(the plan of the resumed run, the results file to replay, the entry it supersedes)."""
    run_dir = find_run_dir(settings, run)
    config = EvalConfig.model_validate_json((run_dir / "config.json").read_text(encoding="utf-8"))
    entry = registry_entry(settings, run_dir)
    if entry is not None and entry.status == "complete":
        raise InputError(
            f"eval run {run_dir.name} finished: experiment {entry.experiment_name!r} "
            f"({entry.experiment_id}) holds all its rows",
            hint="nothing to resume; run `facetopt eval` for a new experiment",
        )
    if entry is not None and entry.superseded_by:
        raise InputError(
            f"eval run {run_dir.name} was already superseded by experiment {entry.superseded_by}",
            hint="nothing to resume",
        )
    if config.no_send_logs:
        raise InputError(
            f"eval run {run_dir.name} was not sending logs to Braintrust",
            hint="--resume logs a run's scored rows to Braintrust; re-run `facetopt eval` instead",
        )
    if settings.braintrust_api_key is None:
        raise InputError("--resume logs to Braintrust: no BRAINTRUST_API_KEY is set", hint="set it in .env")
    model, judge = config.facet_model, config.judge
    settings = settings.model_copy(
        update={
            "model": model.model,
            "api_base": "simulated://" if model.simulated else model.base_url,
            "judge_model": judge.model,
            "judge_api_base": "simulated://" if judge.simulated else judge.base_url,
            "trials": config.trials,
            "max_tokens": config.max_tokens,
            "request_timeout": config.request_timeout,
            "concurrency": config.concurrency,
        }
    )
    meta = config.metadata
    rows = read_rows(Path(config.rows_file) if Path(config.rows_file).is_file() else run_dir / "rows.jsonl")
    plan = EvalPlan(
        settings=settings,
        backend="braintrust",
        dataset=str(meta.get("dataset") or ""),
        dataset_project=str(meta.get("dataset_project") or config.project),
        project=config.project,
        project_id=config.project_id,
        model=resolve_facet_model(settings),
        judge=resolve_judge(settings),
        send_logs=True,
        rows=rows,
        facets=config.facets,
        prompt_file=str(meta.get("prompt_file") or ""),
        filters=dict(meta.get("filters") or {}),
        split=meta.get("split"),
        name=config.experiment_name,
        roles=list(meta.get("simulated_roles") or []),
        warnings=[],
    )
    results = run_dir / "results.jsonl"
    if not read_results(results):
        plan.warnings.append(f"eval run {run_dir.name} has no scored row: every row is evaluated again")
    return plan, results, entry
