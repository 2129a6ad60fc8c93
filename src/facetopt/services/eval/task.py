"""The eval as it runs inside the runner process (`bt eval` or the SDK's `braintrust eval`).

facetopt writes a config file and the selected rows into the eval run folder and passes their
paths in environment variables (bt passes no arguments to Python eval files); keys arrive in
their own environment variables and are never written anywhere (config.py). This module
turns that into the arguments of `braintrust.Eval`:

- the task renders the facet's wrapper messages with the row's text and calls the facet model
  (`brain-facet-*` models get the facet prompt in `extra_body.suffix_messages`, any other model
  gets it appended to the messages); it never raises: a failed call is recorded on the row
  (`metadata.eval_error`, output "") and every score of that row is None;
- the scorers are the rules of facets/scorers.py plus autoevals `Factuality` on an async client
  (scorers.py);
- every (row, trial) is appended to the results file once its task and all its scorers have
  reported, so facetopt reads per-row results from that file, whatever runner ran the eval
  (results.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facetopt.clients.braintrust.eval_hooks import login_from_environment, summary_reporter
from facetopt.clients.llm.client import ChatRequest, chat_once, make_async_client
from facetopt.clients.prompt_file import FacetPrompt, render_messages
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import ConfigError
from facetopt.services.eval.config import (
    BRAINTRUST_TIMEOUT_ENV,
    CONFIG_ENV,
    JUDGE_KEY_ENV,
    MODEL_KEY_ENV,
    REPLAY_ENV,
    RESULTS_ENV,
    EndpointSpec,
    EvalConfig,
    load_config,
    travelling_metadata,
)
from facetopt.services.eval.results import (
    ERROR_KEY,
    NO_RESULT,
    SUMMARY_SOURCE,
    ResultKey,
    ResultsWriter,
    eval_rows,
    read_results,
    result_key,
)
from facetopt.services.eval.runner_errors import ERRORS_ENV, ErrorFile
from facetopt.services.eval.scorers import SCORES_OF, FactualityScorer, rule_scorers

__all__ = [
    "CONFIG_ENV",
    "JUDGE_KEY_ENV",
    "MODEL_KEY_ENV",
    "NO_RESULT",
    "RESULTS_ENV",
    "SUFFIX_MODEL_PREFIX",
    "EndpointSpec",
    "EvalConfig",
    "FacetEval",
    "ResultsWriter",
    "eval_arguments",
    "eval_cases",
    "eval_rows",
    "facet_request",
    "quiet_http_logs",
    "read_results",
    "read_rows",
    "uses_suffix_messages",
]

SUFFIX_MODEL_PREFIX = "brain-facet"
REPLAYED_KEY = "replayed_from_results"  # in a row's metadata: its output and scores are replayed


def uses_suffix_messages(model: str) -> bool:
    return model.startswith(SUFFIX_MODEL_PREFIX)


def facet_request(facet: FacetPrompt, text: str, model: str, max_tokens: int, key: str) -> ChatRequest:
    """The chat request for one row: wrapper messages with the text, then the facet prompt."""
    messages = render_messages(facet, text)
    if uses_suffix_messages(model):
        return ChatRequest(
            key=key,
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            extra_body={"suffix_messages": facet.suffix_messages},
        )
    appended = [dict(m) for group in facet.suffix_messages for m in group]
    return ChatRequest(key=key, model=model, messages=[*messages, *appended], max_tokens=max_tokens)


class FacetEval:
    """The task and scorers of one eval run, sharing the model clients and the results writer."""

    def __init__(
        self,
        config: EvalConfig,
        writer: ResultsWriter,
        model_key: str | None,
        judge_key: str | None,
        replay: dict[ResultKey, dict[str, Any]] | None = None,
    ):
        from autoevals import Factuality
        from autoevals.oai import LLMClient

        self.config = config
        self.writer = writer
        self.judge_key = judge_key
        self._experiment_noted = False
        self.replay = replay or {}  # (row id, trial) -> its line of an earlier results file
        # made before the runner starts its event loop (httpx binds to a loop on first use only), so
        # the first rows do not wait for imports and client set-up
        self.model_client = make_async_client(
            config.facet_model.endpoint(model_key),
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            concurrency=config.concurrency,
        )
        judge_client = make_async_client(
            config.judge.endpoint(judge_key),
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            concurrency=config.concurrency,
        )
        # an instance, not Factuality.partial (which fails on a second `client` keyword); the async
        # client is wrapped once here instead of by autoevals on every call
        self.factuality = Factuality(
            model=config.judge.model, client=LLMClient(openai=judge_client, is_async=True)
        )

    def _note_experiment(self, hooks: Any) -> None:
        """Once: the experiment the runner logs this row to (runners that never call the reporter).

        The id is the one Braintrust issued for the root span's experiment, never one made up here.
        """
        if self._experiment_noted or self.config.no_send_logs:
            return
        span = getattr(hooks, "span", None)
        kind = getattr(getattr(span, "parent_object_type", None), "name", "")
        lazy_id = getattr(span, "parent_object_id", None)
        if lazy_id is None or str(kind).upper() != "EXPERIMENT" or not hasattr(lazy_id, "get"):
            return
        try:
            # the experiment was registered before any row ran: this reads the id, it sends nothing
            experiment_id = lazy_id.get()
        except Exception:  # the summary's entry is the one that counts
            return
        if experiment_id:
            self._experiment_noted = True
            self.writer.experiment({"id": experiment_id, "source": "span"})

    async def task(self, input: dict[str, Any], hooks: Any) -> str:
        self._note_experiment(hooks)
        metadata = hooks.metadata if isinstance(getattr(hooks, "metadata", None), dict) else {}
        metadata["trial"] = int(getattr(hooks, "trial_index", 0) or 0)
        row_id = str(metadata.get("dataset_row_id"))
        facet_name = str((input or {}).get("facet_name", ""))
        if (cached := self.replay.get(result_key(metadata))) is not None:
            return self._replayed(cached, metadata, input, hooks)
        output, error = "", None
        try:
            facet = self.config.facet(facet_name)
            if facet is None:
                error = f"facet {facet_name!r} is not in the prompt file"
            else:
                metadata["eval_prompt_sha256"] = facet.prompt_sha256
                metadata["facet_prompt_sha256"] = facet.prompt_sha256
                metadata["facet_model"] = self.config.facet_model.model
                metadata["facet_prompt_file"] = self.config.metadata.get("prompt_file")
                text = str((input or {}).get("preprocessed_text") or "")
                request = facet_request(
                    facet, text, self.config.facet_model.model, self.config.max_tokens, row_id
                )
                result = await chat_once(self.model_client, request)
                output, error = result.text or "", result.error
        except Exception as exc:  # the task never raises: one bad row must not sink the run
            error = f"{type(exc).__name__}: {exc}"[:300]
        if error:
            metadata[ERROR_KEY] = error
        self.writer.task_done(
            result_key(metadata),
            {
                "id": row_id,
                "trial": metadata["trial"],
                "facet_name": facet_name,
                "split": metadata.get("split"),
                "input": input,
                "output": output,
                "expected": hooks.expected if hasattr(hooks, "expected") else None,
                "metadata": metadata,
                "error": error,
            },
        )
        return output

    def _replayed(self, cached: dict[str, Any], metadata: dict, input: Any, hooks: Any) -> str:
        """A row scored by an earlier, unfinished run: its recorded output, no model call."""
        metadata.update({k: v for k, v in (cached.get("metadata") or {}).items() if k not in metadata})
        metadata[REPLAYED_KEY] = True
        if cached.get("error"):
            metadata[ERROR_KEY] = cached["error"]
        self.writer.task_done(
            result_key(metadata),
            {
                "id": cached.get("id"),
                "trial": metadata["trial"],
                "facet_name": cached.get("facet_name"),
                "split": metadata.get("split"),
                "input": input,
                "output": cached.get("output") or "",
                "expected": hooks.expected if hasattr(hooks, "expected") else None,
                "metadata": metadata,
                "error": cached.get("error"),
            },
        )
        return str(cached.get("output") or "")

    def scorers(self) -> list[Any]:
        factuality = FactualityScorer(self.factuality, self.writer, self.judge_deadline, [self.judge_key])
        scorers = [*rule_scorers(self.config, self.writer), factuality]
        return [replaying(scorer, self.replay, self.writer) for scorer in scorers] if self.replay else scorers

    @property
    def judge_deadline(self) -> float:
        # autoevals retries rate limits up to 100 times by itself: bound the whole judgement
        return self.config.request_timeout * (self.config.max_retries + 1) + 30.0


# -- the Eval arguments ----------------------------------------------------------------------------


def replaying(scorer: Any, replay: dict[ResultKey, dict[str, Any]], writer: ResultsWriter) -> Any:
    """`scorer`, except on replayed rows, where it gives the score recorded by the earlier run."""
    name = scorer._name() if hasattr(scorer, "_name") else scorer.__name__
    run = scorer.eval_async if hasattr(scorer, "eval_async") else scorer

    async def replayed(
        output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **kw: Any
    ) -> Any:
        key = result_key(metadata)
        cached = replay.get(key) if (metadata or {}).get(REPLAYED_KEY) else None
        if cached is None:
            return await run(output, expected=expected, input=input, metadata=metadata, **kw)
        recorded, errors = cached.get("scores") or {}, cached.get("scorer_errors") or {}
        names = SCORES_OF.get(name, (name,))
        for score in names:
            writer.scored(key, score, recorded.get(score), error=errors.get(score))
        if len(names) == 1:
            return recorded.get(name)
        return [{"name": score, "score": recorded.get(score)} for score in names]

    replayed.__name__ = replayed.__qualname__ = name
    return replayed


def read_replay(path: Path) -> dict[ResultKey, dict[str, Any]]:
    """(row id, trial) -> the line of a results file."""
    return {(str(r["id"]), int(r.get("trial") or 0)): r for r in read_results(path)}


def read_rows(path: Path) -> list[DatasetRow]:
    with path.open(encoding="utf-8") as handle:
        return [DatasetRow.model_validate_json(line) for line in handle if line.strip()]


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
    secrets = [environ.get(MODEL_KEY_ENV), environ.get(JUDGE_KEY_ENV), environ.get("BRAINTRUST_API_KEY")]
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
    replay = environ.get(REPLAY_ENV)
    runtime = FacetEval(
        config,
        writer,
        environ.get(MODEL_KEY_ENV),
        environ.get(JUDGE_KEY_ENV),
        read_replay(Path(replay)) if replay else None,
    )
    if not config.no_send_logs:
        braintrust_login(errors)
    return {
        "name": config.project,
        "data": eval_cases(read_rows(Path(config.rows_file)), config.metadata.get("prompt_file")),
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
