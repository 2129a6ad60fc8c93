"""`facetopt eval`: select dataset rows, run the facet eval through bt (or the SDK runner), record it.

The parent side. It reads and filters the rows, snapshots them and the facet prompts into an eval
run folder (`<output root>/evals/<UTC stamp>/`), starts the runner with everything in environment
variables (keys only there), draws progress from the results file the eval appends to, then
builds the per-row results from that file, stores them (local backend, or `--no-send-logs`), and
records the run in the registry with its prompt hashes and filters.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from facetopt.clients import artifacts
from facetopt.clients.bt_runner import (
    SDK_FALLBACK_NOTE,
    LineCounter,
    RunnerOutcome,
    find_bt,
    redact,
    run_runner,
    runner_command,
)
from facetopt.clients.llm import (
    Endpoint,
    mixed_simulation_warning,
    resolve_facet_model,
    resolve_judge,
    simulated_roles,
)
from facetopt.clients.local_store import LocalStore
from facetopt.clients.prompt_file import FacetPrompt, load_prompt_file
from facetopt.domain.dataset import DatasetRow
from facetopt.domain.experiments import EvalRow, ExperimentRecord, FacetMetrics
from facetopt.errors import EvalRunError, InputError, NotFoundError
from facetopt.facets.metrics import metrics_by_facet
from facetopt.services import eval_task
from facetopt.services.dataset_command import build_settings, choose_backend
from facetopt.services.progress import Progress
from facetopt.settings import Settings

SPLITS = ("train", "validation")
EVAL_TASK = "eval"
PACKAGED_EVAL_FILE = Path(__file__).resolve().parent.parent / "eval_facet.py"


class EvalSummary(BaseModel):
    """What `facetopt eval` reports (and `--json` prints)."""

    experiment_id: str
    experiment_name: str
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
    stored_locally: bool = True
    run_dir: str
    seconds: float = 0.0
    metrics: list[FacetMetrics] = Field(default_factory=list)
    failed_rows: list[dict[str, str]] = Field(default_factory=list)  # first few {id, error}
    warnings: list[str] = Field(default_factory=list)


@dataclass
class EvalOptions:
    """What the command line asks beyond settings."""

    facets: list[str] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    no_send_logs: bool = False
    experiment_name: str | None = None


# -- row selection ---------------------------------------------------------------------------------


def parse_splits(value: str | None) -> list[str]:
    """`train`, `validation`, a comma list of them, or nothing / `all` for every split."""
    if not value or value.strip().lower() == "all":
        return []
    splits = [s.strip().lower() for s in value.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise InputError(
            f"unknown split {', '.join(unknown)}", hint="use --split train or --split validation"
        )
    return list(dict.fromkeys(splits))


def _counts(values: list[str | None]) -> str:
    found: dict[str, int] = {}
    for value in values:
        found[value or "none"] = found.get(value or "none", 0) + 1
    return ", ".join(f"{name} {n}" for name, n in sorted(found.items()))


def select_rows(
    rows: list[DatasetRow],
    *,
    splits: list[str],
    facets: list[str],
    row_ids: list[str],
    max_rows: int | None,
    warn: Callable[[str], None] = lambda _: None,
) -> list[DatasetRow]:
    """Filters in order split, facet, row id, then the first --max-rows rows in row-id order."""
    selected = sorted(rows, key=lambda r: r.id)
    if splits:
        kept = [r for r in selected if (r.split or "").lower() in splits]
        if not kept:
            raise InputError(
                f"--split {','.join(splits)} left no rows "
                f"(the dataset's splits: {_counts([r.split for r in selected])})",
                hint="choose a split the dataset has, or leave out --split",
            )
        selected = kept
    if facets:
        wanted = {f.strip().casefold() for f in facets}
        kept = [r for r in selected if r.facet_name.casefold() in wanted]
        if not kept:
            where = " after --split" if splits else ""
            raise InputError(
                f"--facet {', '.join(facets)} left no rows{where} "
                f"(facets there: {_counts([r.facet_name for r in selected])})",
                hint="facet names are compared case-insensitively; pick one of those listed",
            )
        selected = kept
    if row_ids:
        wanted_ids = list(dict.fromkeys(row_ids))
        present = {r.id for r in selected}
        kept = [r for r in selected if r.id in set(wanted_ids)]
        if not kept:
            before = " after --split/--facet" if splits or facets else ""
            raise InputError(
                f"--row-id left no rows: none of {', '.join(wanted_ids[:5])} "
                f"is among the {len(selected)} rows{before}",
                hint="row ids look like `<source row id>:<facet>`; see `facetopt inspect failures`",
            )
        unknown = [i for i in wanted_ids if i not in present]
        if unknown:
            warn(f"{len(unknown)} --row-id value(s) matched no row: {', '.join(unknown[:5])}")
        selected = kept
    if max_rows is not None:
        if max_rows < 1:
            raise InputError(
                "--max-rows must be at least 1", hint="leave it out to evaluate every selected row"
            )
        selected = selected[:max_rows]
    return selected


def prompts_for(rows: list[DatasetRow], facets: list[FacetPrompt], prompt_path: Path) -> list[FacetPrompt]:
    """The prompt of every facet the rows need (names compared case-insensitively)."""
    by_name = {f.facet_name.casefold(): f for f in facets}
    needed = list(dict.fromkeys(r.facet_name for r in rows))
    missing = [name for name in needed if name.casefold() not in by_name]
    if missing:
        raise InputError(
            f"facet {', '.join(repr(m) for m in missing)} of the dataset "
            f"is not in the prompt file {prompt_path}",
            hint=f"known facets: {', '.join(f.facet_name for f in facets) or 'none'}; "
            "add the facet with `facetopt bootstrap`, or pass --facet to evaluate only known facets",
        )
    return list({by_name[name.casefold()].facet_name: by_name[name.casefold()] for name in needed}.values())


# -- reading the dataset ---------------------------------------------------------------------------


def read_local_rows(settings: Settings, dataset_project: str, dataset: str) -> list[DatasetRow]:
    # DuckDB allows one writer: open read-only and close before the runner (which does not open it)
    with LocalStore(settings.store_path, read_only=True) as store:
        return store.read_rows(dataset_project, dataset)


def read_braintrust_rows(
    settings: Settings, dataset_project: str, dataset: str, project: str | None
) -> tuple[list[DatasetRow], str | None]:
    """(rows, the id of the experiment project `project`, created when missing; None when not asked)."""
    from facetopt.clients import braintrust

    conn = braintrust.connect(
        settings.braintrust_api_key,
        app_url=settings.braintrust_app_url,
        org_name=settings.target_org,
        api_url_override=settings.braintrust_api_url,
    )
    rows = braintrust.read_dataset_rows(conn, dataset_project, dataset)
    return rows, braintrust.resolve_project(conn, project, create=True).id if project else None


# -- the runner environment ------------------------------------------------------------------------


def _secret(endpoint: Endpoint) -> str | None:
    return endpoint.api_key.get_secret_value() if endpoint.api_key is not None else None


def runner_environment(
    base: Mapping[str, str],
    settings: Settings,
    *,
    config_path: Path,
    results_path: Path,
    model: Endpoint,
    judge: Endpoint,
    send_logs: bool,
    log_rows: int,
) -> dict[str, str]:
    """The runner's environment: paths, keys (never on the command line), Braintrust logging setup."""
    env = {k: v for k, v in base.items() if not k.startswith("FACETOPT_EVAL_")}
    env[eval_task.CONFIG_ENV] = str(config_path)
    env[eval_task.RESULTS_ENV] = str(results_path)
    for name, endpoint in ((eval_task.MODEL_KEY_ENV, model), (eval_task.JUDGE_KEY_ENV, judge)):
        if (secret := _secret(endpoint)) is not None:
            env[name] = secret
    if not send_logs:
        env.pop("BRAINTRUST_API_KEY", None)
        return env
    if settings.braintrust_api_key is not None:
        env["BRAINTRUST_API_KEY"] = settings.braintrust_api_key.get_secret_value()
    env["BRAINTRUST_APP_URL"] = settings.braintrust_app_url
    if settings.braintrust_api_url:
        env["BRAINTRUST_API_URL"] = settings.braintrust_api_url
    if settings.target_org:
        env["BRAINTRUST_ORG_NAME"] = settings.target_org
    # the SDK drops a log batch it cannot send with only a printed warning; synchronous flushing
    # makes that a runner failure instead, and the queue must then hold every span until the end
    env["BRAINTRUST_SYNC_FLUSH"] = "1"
    env["BRAINTRUST_QUEUE_SIZE"] = str(max(25_000, log_rows * 60))
    return env


def runner_failure(
    outcome: RunnerOutcome, runner: str, run_dir: Path, secrets: list[str | None]
) -> EvalRunError:
    tail = redact(outcome.tail_text(), secrets) or "(no output)"
    hint = f"the runner's output is in {run_dir / 'runner.log'}"
    if runner == "bt" and outcome.returncode == 2:
        hint = "bt could not authenticate: check BRAINTRUST_API_KEY (or pass --no-send-logs); " + hint
    return EvalRunError(
        f"the eval runner ({runner}) exited with code {outcome.returncode}:\n{tail}", hint=hint
    )


# -- the command -----------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class EvalPlan:
    """Everything decided before the runner starts."""

    settings: Settings
    backend: str
    dataset: str
    dataset_project: str
    project: str
    project_id: str | None
    model: Endpoint
    judge: Endpoint
    send_logs: bool
    rows: list[DatasetRow]
    facets: list[FacetPrompt]
    prompt_file: str
    filters: dict[str, Any]
    split: str | None
    name: str
    roles: list[str]
    warnings: list[str]

    @property
    def prompt_hashes(self) -> dict[str, str]:
        return {f.facet_name: f.prompt_sha256 for f in self.facets}

    def config(self, rows_file: Path) -> eval_task.EvalConfig:
        return eval_task.EvalConfig(
            project=self.project,
            project_id=self.project_id,
            experiment_name=self.name,
            facet_model=eval_task.EndpointSpec.of(self.model),
            judge=eval_task.EndpointSpec.of(self.judge),
            max_tokens=self.settings.max_tokens,
            request_timeout=self.settings.request_timeout,
            concurrency=self.settings.concurrency,
            trials=self.settings.trials,
            no_send_logs=not self.send_logs,
            rows_file=str(rows_file.resolve()),
            facets=self.facets,
            metadata={
                "dataset": self.dataset,
                "dataset_project": self.dataset_project,
                "model": self.model.model,
                "judge_model": self.judge.model,
                "prompt_file": self.prompt_file,
                "prompt_hashes": self.prompt_hashes,
                "split": self.split,
                "filters": self.filters,
                "simulated_roles": self.roles,
            },
        )

    def secrets(self) -> list[str | None]:
        key = self.settings.braintrust_api_key
        return [_secret(self.model), _secret(self.judge), key.get_secret_value() if key else None]


def plan_eval(
    settings: Settings,
    backend: str,
    options: EvalOptions,
    progress: Progress,
    warn: Callable[[str], None],
) -> EvalPlan:
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    dataset_project = settings.dataset_project or settings.require(
        "target_project",
        "--dataset-project",
        "FACET_OPTIMIZER_DATASET_PROJECT (or FACET_OPTIMIZER_TARGET_PROJECT)",
    )
    project = settings.project or settings.target_project or dataset_project
    if settings.concurrency < 1 or settings.trials < 1:
        raise InputError("--concurrency and --trials must be at least 1", hint="the defaults are 16 and 1")
    splits = parse_splits(settings.split)
    document = load_prompt_file(settings.prompt_path)
    model, judge = resolve_facet_model(settings), resolve_judge(settings)
    send_logs = backend == "braintrust" and not options.no_send_logs
    warnings: list[str] = []

    def warned(message: str) -> None:
        warnings.append(message)
        warn(message)

    progress.stage(f"reading dataset {dataset!r} of project {dataset_project!r} ({backend})")
    project_id = None
    if backend == "local":
        rows = read_local_rows(settings, dataset_project, dataset)
    else:
        rows, project_id = read_braintrust_rows(
            settings, dataset_project, dataset, project if send_logs else None
        )
    if not rows:
        raise NotFoundError(
            f"dataset {dataset!r} in project {dataset_project!r} has no rows ({backend} backend)",
            hint="create it with `facetopt dataset create`; check --dataset, --dataset-project, --backend",
        )
    selected = select_rows(
        rows,
        splits=splits,
        facets=options.facets,
        row_ids=options.row_ids,
        max_rows=settings.max_rows,
        warn=warned,
    )
    roles = simulated_roles(model, judge)
    if roles:
        warned(
            mixed_simulation_warning(model, judge)
            or "SIMULATED facet model and judge (no key or base URL configured): the scores come from "
            "facetopt's deterministic simulation, not a real model"
        )
    given = {
        "split": splits,
        "facet": options.facets,
        "row_id": options.row_ids,
        "max_rows": settings.max_rows,
    }
    return EvalPlan(
        settings=settings,
        backend=backend,
        dataset=dataset,
        dataset_project=dataset_project,
        project=project,
        project_id=project_id,
        model=model,
        judge=judge,
        send_logs=send_logs,
        rows=selected,
        facets=prompts_for(selected, document.facets, document.path),
        prompt_file=str(document.path),
        filters={k: v for k, v in given.items() if v not in (None, [])},
        split=",".join(splits) if splits else None,
        name=options.experiment_name or f"{settings.experiment_prefix}-{settings.model}",
        roles=roles,
        warnings=warnings,
    )


def launch(
    plan: EvalPlan,
    run_dir: Path,
    progress: Progress,
    announce: Callable[[str], None],
    environ: Mapping[str, str],
) -> tuple[str, RunnerOutcome]:
    """Snapshot rows and config into the run folder, run the runner, keep its log: (runner, outcome)."""
    rows_path, config_path, results_path = (
        run_dir / "rows.jsonl",
        run_dir / "config.json",
        run_dir / "results.jsonl",
    )
    artifacts.write_jsonl(rows_path, plan.rows)
    artifacts.write_text(config_path, plan.config(rows_path).model_dump_json(indent=2) + "\n")
    results_path.touch()
    bt = find_bt(environ.get("PATH"))
    command = runner_command(PACKAGED_EVAL_FILE, no_send_logs=not plan.send_logs, bt=bt)
    if bt is None:
        announce(SDK_FALLBACK_NOTE)
    env = runner_environment(
        environ,
        plan.settings,
        config_path=config_path.resolve(),
        results_path=results_path.resolve(),
        model=plan.model,
        judge=plan.judge,
        send_logs=plan.send_logs,
        log_rows=len(plan.rows) * plan.settings.trials,
    )
    progress.stage(
        f"evaluating {len(plan.rows)} rows x {plan.settings.trials} trial(s) with {plan.model.model} "
        f"({plan.model.label}), judge {plan.judge.model} ({plan.judge.label}), via {command.runner}"
    )
    counter = LineCounter(results_path)
    progress.start(EVAL_TASK, len(plan.rows) * plan.settings.trials)

    def tick() -> None:
        if (new := counter.new_lines()) > 0:
            progress.advance(EVAL_TASK, new)

    try:
        outcome = run_runner(command, env, on_tick=tick)
    finally:
        progress.finish(EVAL_TASK)
    artifacts.write_text(run_dir / "runner.log", redact(outcome.log_text(command), plan.secrets()))
    if not outcome.ok:
        raise runner_failure(outcome, command.runner, run_dir, plan.secrets())
    return command.runner, outcome


def record_run(
    plan: EvalPlan, runner: str, outcome: RunnerOutcome, run_dir: Path, warn: Callable[[str], None]
) -> EvalSummary:
    """EvalRows from the results file; the registry entry, local rows and prompt history; the summary."""

    def warned(message: str) -> None:
        plan.warnings.append(message)
        warn(message)

    rows = eval_task.eval_rows(
        plan.rows, eval_task.read_results(run_dir / "results.jsonl"), plan.settings.trials
    )
    line = outcome.summaries[-1] if outcome.summaries else None
    experiment_id, name, url, stored_locally = str(uuid.uuid4()), plan.name, None, True
    if plan.send_logs:
        if line and line.experiment_id:
            experiment_id, url, stored_locally = line.experiment_id, line.experiment_url, False
            name = line.experiment_name or name
        else:
            warned("the runner printed no experiment id: the run is stored locally under a facetopt id")
    errors = [r for r in rows if r.error]
    judged = [r for r in rows if "Factuality" in (r.metadata.get("scorer_errors") or {})]
    if judged:
        example = str(judged[0].metadata["scorer_errors"]["Factuality"])[:200]
        warned(f"Factuality failed on {len(judged)} row(s) (score left empty), e.g. {example}")
    common = dict(
        experiment_name=name,
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
    record = ExperimentRecord(
        experiment_id=experiment_id,
        row_count=len(rows),
        error_count=len(errors),
        created=_now_iso(),
        **common,
    )
    store_experiment(plan.settings, record, rows if stored_locally else None, plan.facets)
    summary = EvalSummary(
        experiment_id=experiment_id,
        model_endpoint=plan.model.label,
        judge_model=plan.judge.model,
        judge_endpoint=plan.judge.label,
        rows=len(rows),
        trials=plan.settings.trials,
        errors=len(errors),
        factuality_errors=len(judged),
        run_dir=str(run_dir),
        seconds=round(outcome.seconds, 2),
        metrics=metrics_by_facet(rows),
        failed_rows=[{"id": r.id, "error": r.error or ""} for r in errors[:5]],
        warnings=plan.warnings,
        **common,
    )
    artifacts.write_json(run_dir / "summary.json", summary)
    if rows and len(errors) == len(rows):
        raise EvalRunError(
            f"every row failed ({len(errors)} rows), e.g. {errors[0].id}: {errors[0].error}",
            hint=f"check the facet model endpoint (--api-base, its key); the run is in {run_dir}",
        )
    return summary


def run_eval(
    *,
    env_file: Path | None,
    flags: dict[str, Any],
    options: EvalOptions,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
) -> EvalSummary:
    """The whole command; `environ` is the runner's base environment (default: this process's)."""
    settings = build_settings(env_file, flags)
    backend = choose_backend(settings, announce)
    plan = plan_eval(settings, backend, options, progress, warn)
    run_dir = artifacts.new_run_dir(settings.output_root / "evals")
    runner, outcome = launch(plan, run_dir, progress, announce, os.environ if environ is None else environ)
    return record_run(plan, runner, outcome, run_dir, warn)


def store_experiment(
    settings: Settings, record: ExperimentRecord, rows: list[EvalRow] | None, facets: list[FacetPrompt]
) -> None:
    """The registry entry (always), the rows (when kept locally) and each facet prompt's text."""
    with LocalStore(settings.store_path) as store:
        store.add_experiment(record, rows)
        for facet in facets:
            store.remember_prompt(facet.prompt_sha256, facet.facet_name, facet.prompt_text)
