"""`facetopt eval`: select dataset rows, run the facet eval through bt (or the SDK runner), record it.

The parent side, in three steps: plan (plan.py: read and filter the rows, load the prompts,
resolve the endpoints), launch (launch.py: snapshot rows and config into an eval run folder
`<output root>/evals/<UTC stamp>/`, start the runner with everything in environment variables,
keys only there, and draw progress from the results file the eval appends to) and record
(record.py: per-row results from that file, stored locally or with `--no-send-logs`, and the
registry entry with its prompt hashes and filters).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from facetopt.clients import artifacts
from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import ExperimentRecord
from facetopt.facets.data.selection import parse_splits, select_rows
from facetopt.services.backends import Backend, open_backend
from facetopt.services.eval.launch import launch, runner_environment
from facetopt.services.eval.plan import EvalOptions, EvalPlan, plan_eval, prompts_for
from facetopt.services.eval.record import EvalSummary
from facetopt.services.eval.resume import plan_resume
from facetopt.services.eval.unfinished import conclude
from facetopt.services.progress import Progress
from facetopt.settings import Settings

__all__ = [
    "EvalOptions",
    "EvalSummary",
    "parse_splits",
    "prompts_for",
    "run_eval",
    "runner_environment",
    "select_rows",
]


def run_eval(
    settings: Settings,
    *,
    options: EvalOptions,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
    backend: Backend | None = None,
) -> EvalSummary:
    """The whole command; `environ` is the runner's base environment (default: this process's)."""
    replay = None
    if options.resume:
        plan, replay, supersedes = plan_resume(settings, options.resume)
        for message in plan.warnings:
            warn(message)
    else:
        backend = backend if backend is not None else open_backend(settings, announce)
        plan = plan_eval(settings, backend, options, progress, warn)
        supersedes = unfinished_namesake(settings, plan)
    if supersedes is not None:
        plan.supersedes_id = supersedes.experiment_id
        held = (
            f", {supersedes.logged_rows} of its rows in Braintrust" if supersedes.status == "partial" else ""
        )
        announce(
            f"this run supersedes the unfinished ({supersedes.status}) experiment "
            f"{supersedes.experiment_name!r} ({supersedes.experiment_id}{held})"
            + ("; Braintrust may give the new one a numbered name" if plan.send_logs else "")
        )
    run_dir = artifacts.new_run_dir(settings.output_root / "evals")
    runner, outcome = launch(
        plan, run_dir, progress, announce, os.environ if environ is None else environ, replay=replay
    )
    return conclude(plan, runner, outcome, run_dir, warn, supersedes)


def unfinished_namesake(settings: Settings, plan: EvalPlan) -> ExperimentRecord | None:
    """The newest unfinished registry run this run replaces: same backend, project, dataset, split
    and name (Braintrust may have numbered it), not yet superseded."""
    if not settings.store_path.exists():
        return None
    with LocalStore(settings.store_path, read_only=True) as store:
        records = store.experiments()
    named = re.compile(re.escape(plan.name) + r"(-\d+)?")
    for record in records:
        if (
            record.status != "complete"
            and not record.superseded_by
            and record.backend == plan.backend
            and record.project == plan.project
            and record.dataset == plan.dataset
            and (record.split or None) == (plan.split or None)
            and named.fullmatch(record.experiment_name)
        ):
            return record
    return None
