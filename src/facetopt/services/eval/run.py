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
from collections.abc import Callable, Mapping

from facetopt.clients import artifacts
from facetopt.facets.selection import parse_splits, select_rows
from facetopt.services.backends import Backend, open_backend
from facetopt.services.eval.launch import launch, runner_environment
from facetopt.services.eval.plan import EvalOptions, plan_eval, prompts_for
from facetopt.services.eval.record import EvalSummary, record_run
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
    backend = backend if backend is not None else open_backend(settings, announce)
    plan = plan_eval(settings, backend, options, progress, warn)
    run_dir = artifacts.new_run_dir(settings.output_root / "evals")
    runner, outcome = launch(plan, run_dir, progress, announce, os.environ if environ is None else environ)
    return record_run(plan, runner, outcome, run_dir, warn)
