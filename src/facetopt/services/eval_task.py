"""The eval as it runs inside the runner process (`bt eval` or the SDK's `braintrust eval`).

facetopt writes a config file and the selected rows into the eval run folder and passes their
paths in environment variables (bt passes no arguments to Python eval files); keys arrive in
their own environment variables and are never written anywhere. This module turns that into the
arguments of `braintrust.Eval`:

- the task renders the facet's wrapper messages with the row's text and calls the facet model
  (`brain-facet-*` models get the facet prompt in `extra_body.suffix_messages`, any other model
  gets it appended to the messages); it never raises: a failed call is recorded on the row
  (`metadata.eval_error`, output "") and every score of that row is None;
- the scorers are the rules of facets/scorers.py plus autoevals `Factuality` on an async client;
- every (row, trial) is appended to the results file once its task and all its scorers have
  reported, so facetopt reads per-row results from that file, whatever runner ran the eval.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from facetopt.clients.llm import ChatRequest, Endpoint, chat_once, make_async_client
from facetopt.clients.prompt_file import FacetPrompt, render_messages
from facetopt.domain.dataset import DatasetRow
from facetopt.domain.experiments import SCORE_NAMES, EvalRow
from facetopt.errors import ConfigError
from facetopt.facets import scorers as rules

CONFIG_ENV = "FACETOPT_EVAL_CONFIG"
RESULTS_ENV = "FACETOPT_EVAL_RESULTS"
MODEL_KEY_ENV = "FACETOPT_EVAL_MODEL_API_KEY"
JUDGE_KEY_ENV = "FACETOPT_EVAL_JUDGE_API_KEY"
SUFFIX_MODEL_PREFIX = "brain-facet"
ERROR_KEY = "eval_error"


class EndpointSpec(BaseModel):
    """An endpoint without its key (the key travels in an environment variable)."""

    role: str
    model: str
    base_url: str | None = None
    simulated: bool = False

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointSpec:
        return cls(
            role=endpoint.role, model=endpoint.model, base_url=endpoint.base_url, simulated=endpoint.simulated
        )

    def endpoint(self, key: str | None) -> Endpoint:
        secret = SecretStr(key) if key else None
        return Endpoint(self.role, self.model, self.base_url, secret, simulated=self.simulated)  # type: ignore[arg-type]


class EvalConfig(BaseModel):
    """What the parent hands the eval process (no secret in here: it is written to disk)."""

    project: str
    project_id: str | None = None
    experiment_name: str
    facet_model: EndpointSpec
    judge: EndpointSpec
    max_tokens: int
    request_timeout: float
    max_retries: int = 2
    concurrency: int
    trials: int = 1
    no_send_logs: bool = True
    rows_file: str
    facets: list[FacetPrompt]
    metadata: dict[str, Any] = Field(default_factory=dict)

    def facet(self, name: str) -> FacetPrompt | None:
        folded = name.casefold()
        return next((f for f in self.facets if f.facet_name.casefold() == folded), None)


# -- the facet model call --------------------------------------------------------------------------


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


def judge_question(facet_name: str, text: str) -> str:
    """The [Question] Factuality shows its judge: which facet, of which conversation."""
    return f"What is the {facet_name!r} facet value of this conversation?\n\n{text}"


# -- the results file ------------------------------------------------------------------------------


class ResultsWriter:
    """Appends one JSON line per (row, trial) once its task and every scorer have reported."""

    def __init__(self, path: Path, score_names: tuple[str, ...] = SCORE_NAMES):
        self._handle = Path(path).open("a", encoding="utf-8")
        self._names = score_names
        self._pending: dict[tuple[str, int], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _entry(self, key: tuple[str, int]) -> dict[str, Any]:
        return self._pending.setdefault(key, {"scores": {}, "scorer_errors": {}})

    def task_done(self, key: tuple[str, int], record: dict[str, Any]) -> None:
        with self._lock:
            self._entry(key).update(record)
            self._maybe_write(key)

    def scored(self, key: tuple[str, int], name: str, value: float | None, error: str | None = None) -> None:
        with self._lock:
            entry = self._entry(key)
            entry["scores"][name] = value
            if error:
                entry["scorer_errors"][name] = error
            self._maybe_write(key)

    def _maybe_write(self, key: tuple[str, int]) -> None:
        entry = self._pending[key]
        if "id" not in entry or any(name not in entry["scores"] for name in self._names):
            return
        del self._pending[key]
        self._handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()


def _key(metadata: Mapping[str, Any] | None) -> tuple[str, int]:
    metadata = metadata or {}
    return str(metadata.get("dataset_row_id")), int(metadata.get("trial", 0) or 0)


# -- task and scorers ------------------------------------------------------------------------------


class FacetEval:
    """The task and scorers of one eval run, sharing the model clients and the results writer."""

    def __init__(
        self, config: EvalConfig, writer: ResultsWriter, model_key: str | None, judge_key: str | None
    ):
        from autoevals import Factuality
        from autoevals.oai import LLMClient

        self.config = config
        self.writer = writer
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

    async def task(self, input: dict[str, Any], hooks: Any) -> str:
        metadata = hooks.metadata if isinstance(getattr(hooks, "metadata", None), dict) else {}
        metadata["trial"] = int(getattr(hooks, "trial_index", 0) or 0)
        row_id = str(metadata.get("dataset_row_id"))
        facet_name = str((input or {}).get("facet_name", ""))
        output, error = "", None
        try:
            facet = self.config.facet(facet_name)
            if facet is None:
                error = f"facet {facet_name!r} is not in the prompt file"
            else:
                metadata["eval_prompt_sha256"] = facet.prompt_sha256
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
            _key(metadata),
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

    def _rule(
        self, name: str, compute: Callable[[str, str | None, str | None, FacetPrompt | None], float | None]
    ):
        async def scorer(
            output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **_: Any
        ) -> float | None:
            value = None
            if not (metadata or {}).get(ERROR_KEY):
                facet_name = str((input or {}).get("facet_name", ""))
                try:
                    value = compute(facet_name, output, expected, self.config.facet(facet_name))
                except Exception as exc:  # e.g. a facet's invalid no_match_pattern: keep the row
                    self.writer.scored(_key(metadata), name, None, error=f"{type(exc).__name__}: {exc}"[:300])
                    raise
            self.writer.scored(_key(metadata), name, value)
            return value

        scorer.__name__ = name
        scorer.__qualname__ = name
        return scorer

    def scorers(self) -> list[Any]:
        def pattern(facet: FacetPrompt | None) -> str | None:
            return facet.no_match_pattern if facet else None

        return [
            self._rule(
                "binary_decision_match", lambda n, o, e, f: rules.binary_decision_match(o, e, pattern(f))
            ),
            self._rule("positive_recall", lambda n, o, e, f: rules.positive_recall(o, e, pattern(f))),
            self._rule(
                "negative_specificity", lambda n, o, e, f: rules.negative_specificity(o, e, pattern(f))
            ),
            self._rule("sentiment_label_correct", lambda n, o, e, f: rules.sentiment_label_correct(n, o, e)),
            FactualityScorer(self),
        ]

    @property
    def judge_deadline(self) -> float:
        # autoevals retries rate limits up to 100 times by itself: bound the whole judgement
        return self.config.request_timeout * (self.config.max_retries + 1) + 30.0


class FactualityScorer:
    """autoevals Factuality, skipped (None) on rows whose model call failed, recorded in the results file."""

    def __init__(self, owner: FacetEval):
        self.owner = owner

    def _name(self) -> str:
        return "Factuality"

    async def eval_async(
        self, output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **_: Any
    ) -> Any:
        key = _key(metadata)
        if (metadata or {}).get(ERROR_KEY) or expected is None:
            self.owner.writer.scored(key, "Factuality", None)
            return None
        facet_name = str((input or {}).get("facet_name", ""))
        question = judge_question(facet_name, str((input or {}).get("preprocessed_text") or ""))
        try:
            score = await asyncio.wait_for(
                self.owner.factuality.eval_async(output=output or "", expected=str(expected), input=question),
                timeout=self.owner.judge_deadline,
            )
        except Exception as exc:
            self.owner.writer.scored(key, "Factuality", None, error=f"{type(exc).__name__}: {exc}"[:300])
            raise
        self.owner.writer.scored(key, "Factuality", getattr(score, "score", None))
        return score


# -- the Eval arguments ----------------------------------------------------------------------------


def load_config(environ: Mapping[str, str]) -> EvalConfig:
    path = environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(
            f"{CONFIG_ENV} is not set",
            hint="run the eval with `facetopt eval`; it prepares the rows and configuration",
        )
    return EvalConfig.model_validate_json(Path(path).read_text(encoding="utf-8"))


def read_rows(path: Path) -> list[DatasetRow]:
    with path.open(encoding="utf-8") as handle:
        return [DatasetRow.model_validate_json(line) for line in handle if line.strip()]


def eval_cases(rows: list[DatasetRow]) -> list[dict[str, Any]]:
    return [
        {
            "input": row.input,
            "expected": row.expected,
            "metadata": {**row.metadata, "dataset_row_id": row.id, "facet_name": row.facet_name},
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


def eval_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for `braintrust.Eval`, from the environment facetopt set for the runner."""
    environ = os.environ if environ is None else environ
    quiet_http_logs()
    config = load_config(environ)
    results = environ.get(RESULTS_ENV)
    if not results:
        raise ConfigError(f"{RESULTS_ENV} is not set", hint="run the eval with `facetopt eval`")
    runtime = FacetEval(
        config, ResultsWriter(Path(results)), environ.get(MODEL_KEY_ENV), environ.get(JUDGE_KEY_ENV)
    )
    return {
        "name": config.project,
        "data": eval_cases(read_rows(Path(config.rows_file))),
        "task": runtime.task,
        "scores": runtime.scorers(),
        "experiment_name": config.experiment_name,
        "metadata": config.metadata,
        "max_concurrency": config.concurrency,
        "trial_count": config.trials,
        "project_id": config.project_id,
        "no_send_logs": config.no_send_logs,
    }


# -- reading the results file (parent side) --------------------------------------------------------

NO_RESULT = "no result from the eval runner (the row's task or scorers never finished)"


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every complete line of the results file (a runner killed mid-write may leave a partial one)."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
    return records


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def eval_rows(rows: list[DatasetRow], records: list[dict[str, Any]], trials: int = 1) -> list[EvalRow]:
    """One EvalRow per selected row, in the rows' order; scores are means over the row's trials."""
    by_row: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_row.setdefault(str(record["id"]), []).append(record)
    built = []
    for row in rows:
        found = sorted(by_row.get(row.id, []), key=lambda r: int(r.get("trial") or 0))
        base = dict(
            id=row.id, facet_name=row.facet_name, split=row.split, input=row.input, expected=row.expected
        )
        if not found:
            scores: dict[str, float | None] = dict.fromkeys(SCORE_NAMES)
            built.append(
                EvalRow(**base, output="", scores=scores, metadata=dict(row.metadata), error=NO_RESULT)
            )
            continue
        ok = [r for r in found if not r.get("error")]
        names = list(dict.fromkeys(name for r in found for name in (r.get("scores") or {})))
        scores = {
            name: _mean([float(v) for r in found if (v := (r.get("scores") or {}).get(name)) is not None])
            for name in names
        }
        metadata = dict(found[0].get("metadata") or row.metadata)
        scorer_errors = {k: v for r in found for k, v in (r.get("scorer_errors") or {}).items()}
        if scorer_errors:
            metadata["scorer_errors"] = scorer_errors
        if trials > 1 or len(found) > 1:
            metadata.pop("trial", None)
            metadata["trials"] = [
                {
                    "trial": r.get("trial"),
                    "output": r.get("output"),
                    "error": r.get("error"),
                    "scores": r.get("scores"),
                }
                for r in found
            ]
        missing = max(0, trials - len(found))
        if missing:
            metadata["missing_trials"] = missing
        built.append(
            EvalRow(
                **base,
                output=(ok[0] if ok else found[0]).get("output") or "",
                scores=scores,
                metadata=metadata,
                error=None if ok else (found[0].get("error") or NO_RESULT),
            )
        )
    return built
