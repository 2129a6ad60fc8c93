"""The arguments of `braintrust.Eval`, built inside the runner process from the environment
`facetopt eval` set: the config and rows it wrote, the keys, the results and error files.

Before the runner logs in, facetopt logs in itself so a refused login lands in the eval's error
file with its reason (bt drops the runner's stderr when its own is not a terminal); the reporter
writes the experiment the SDK logged to into the results file.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facetopt.clients.braintrust.eval_hooks import login_from_environment, summary_reporter
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import ConfigError
from facetopt.services.eval.config import (
    BRAINTRUST_TIMEOUT_ENV,
    JUDGE_KEY_ENV,
    JUDGE_URL_ENV,
    MODEL_KEY_ENV,
    MODEL_URL_ENV,
    REPLAY_ENV,
    RESULTS_ENV,
    load_config,
    travelling_metadata,
)
from facetopt.services.eval.results import SUMMARY_SOURCE, ResultKey, ResultsWriter, read_results
from facetopt.services.eval.runner_errors import ERRORS_ENV, ErrorFile
from facetopt.services.eval.task import FacetEval, read_rows

__all__ = ["eval_arguments", "eval_cases", "quiet_http_logs", "read_replay"]


def read_replay(path: Path) -> dict[ResultKey, dict[str, Any]]:
    """(row id, trial) -> the line of a results file."""
    return {(str(r["id"]), int(r.get("trial") or 0)): r for r in read_results(path)}


def eval_cases(rows: list[DatasetRow], prompt_file: str | None = None) -> list[dict[str, Any]]:
    """The dataset row's metadata plus `dataset_row_id` and `prompt_file`, as the original eval had it."""
    return [
        {
            "input": row.input,
            "expected": row.expected,
            "metadata": {
                **row.metadata,
                "dataset_row_id": row.id,
                "prompt_file": prompt_file,
                "facet_name": row.facet_name,
            },
            "tags": list(row.tags) or None,
            "id": row.id,
        }
        for row in rows
    ]


def quiet_http_logs() -> None:
    """The SDK runner logs at INFO: one line per HTTP request would bury the runner's real messages."""
    import logging

    for name in ("httpx2", "httpx", "httpcore", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)


def error_file(environ: Mapping[str, str]) -> ErrorFile | None:
    """The eval run folder's error file, recording from now on (None outside `facetopt eval`)."""
    path = environ.get(ERRORS_ENV)
    if not path:
        return None
    secrets = [
        environ.get(MODEL_KEY_ENV),
        environ.get(JUDGE_KEY_ENV),
        environ.get("BRAINTRUST_API_KEY"),
        environ.get(MODEL_URL_ENV),
        environ.get(JUDGE_URL_ENV),
    ]
    errors = ErrorFile(Path(path), secrets)
    errors.install()
    return errors


def facetopt_reporter(writer: ResultsWriter) -> Any:
    """The SDK's default reporter, which also writes the summary's experiment into the results file."""

    def on_summary(summary: Any) -> None:
        if getattr(summary, "experiment_id", None):
            writer.experiment(
                {
                    "id": summary.experiment_id,
                    "name": summary.experiment_name,
                    "url": summary.experiment_url,
                    "project": summary.project_name,
                    "source": SUMMARY_SOURCE,
                }
            )

    return summary_reporter(on_summary)


def braintrust_login(errors: ErrorFile | None) -> None:
    """Log in before the runner does, so a refused login lands in the error file with its reason."""
    try:
        login_from_environment()
    except Exception as exc:
        if errors is not None:
            errors.exception(exc, kind="login")
        raise


def _route_braintrust_requests(environ: Mapping[str, str]) -> None:
    """Every SDK request retried like facetopt's own, and what reached Braintrust recorded."""
    from facetopt.clients.braintrust.activity import ACTIVITY_ENV, ActivityWriter
    from facetopt.clients.braintrust.runner_http import DEFAULT_TIMEOUT_S, install

    path = environ.get(ACTIVITY_ENV)
    try:
        timeout = float(environ.get(BRAINTRUST_TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        timeout = DEFAULT_TIMEOUT_S
    install(ActivityWriter(Path(path)) if path else None, timeout_s=timeout)


def eval_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for `braintrust.Eval`, from the environment facetopt set for the runner."""
    environ = os.environ if environ is None else environ
    errors = error_file(environ)
    try:
        return _eval_arguments(environ, errors)
    except Exception as exc:
        if errors is not None:
            errors.exception(exc)
        raise


def _eval_arguments(environ: Mapping[str, str], errors: ErrorFile | None) -> dict[str, Any]:
    quiet_http_logs()
    config = load_config(environ)
    if not config.no_send_logs:
        _route_braintrust_requests(environ)
    results = environ.get(RESULTS_ENV)
    if not results:
        raise ConfigError(f"{RESULTS_ENV} is not set", hint="run the eval with `facetopt eval`")
    writer = ResultsWriter(Path(results))
    rows = read_rows(Path(config.rows_file))
    replay = environ.get(REPLAY_ENV)
    runtime = FacetEval(
        config,
        writer,
        environ.get(MODEL_KEY_ENV),
        environ.get(JUDGE_KEY_ENV),
        rows=rows,
        replay=read_replay(Path(replay)) if replay else None,
        base_urls=(environ.get(MODEL_URL_ENV), environ.get(JUDGE_URL_ENV)),
    )
    atexit.register(runtime.cache.close)  # commit what is still queued, also after Ctrl-C
    runtime.report_policy(Path(results).with_suffix(".policy.txt"))
    if not config.no_send_logs:
        braintrust_login(errors)
    return {
        "name": config.project,
        "data": eval_cases(rows, config.metadata.get("prompt_file")),
        "task": runtime.task,
        "scores": runtime.scorers(),
        "experiment_name": config.experiment_name,
        "metadata": {**config.metadata, **travelling_metadata(config.facets)},
        "max_concurrency": config.concurrency,
        "trial_count": config.trials,
        "project_id": config.project_id,
        "no_send_logs": config.no_send_logs,
        "reporter": facetopt_reporter(writer),
    }
