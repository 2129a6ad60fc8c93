"""The eval as it runs inside the runner process (`bt eval` or the SDK's `braintrust eval`).

facetopt writes a config file and the selected rows into the eval run folder and passes their
paths in environment variables (bt passes no arguments to Python eval files); keys arrive in
their own environment variables and are never written anywhere (config.py). This module holds
the eval's task and scorers (arguments.py turns them into the arguments of `braintrust.Eval`):

- the task renders the facet's wrapper messages with the row's text and calls the facet model
  (`brain-facet-*` models get the facet prompt in `extra_body.suffix_messages`, any other model
  gets it appended to the messages); it never raises: a failed call is recorded on the row
  (`metadata.eval_error`, output "") and every score of that row is None;
- the scorers are the rules of facets/decide/scorers.py plus autoevals `Factuality` on an async client
  (scorers.py);
- every (row, trial) is appended to the results file once its task and all its scorers have
  reported, so facetopt reads per-row results from that file, whatever runner ran the eval
  (results.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetopt.clients.llm.call_cache import CallCache, call_key
from facetopt.clients.llm.client import (
    NOT_SENT_COST,
    ChatRequest,
    chat_once,
    make_async_client,
    make_chat_client,
)
from facetopt.clients.prompt_file import FacetPrompt, render_messages
from facetopt.domain.dataset import DatasetRow
from facetopt.facets.decide.cost import EXPECTED_FACET_TOKENS
from facetopt.facets.prompts.replies import value_or_error
from facetopt.services.cost import CostBudget, UsageMeter
from facetopt.services.eval.config import (
    CONFIG_ENV,
    JUDGE_KEY_ENV,
    MODEL_KEY_ENV,
    RESULTS_ENV,
    EndpointSpec,
    EvalConfig,
)
from facetopt.services.eval.replay import REPLAYED_KEY, replaying
from facetopt.services.eval.results import (
    ERROR_KEY,
    NO_RESULT,
    ResultKey,
    ResultsWriter,
    eval_rows,
    read_results,
    result_key,
)
from facetopt.services.eval.scorers import (
    FACTUALITY,
    FactualityScorer,
    add_judge_usage,
    judge_question,
    rule_scorers,
)

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
    "eval_rows",
    "facet_request",
    "read_results",
    "read_rows",
    "uses_suffix_messages",
]

SUFFIX_MODEL_PREFIX = "brain-facet"


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
        rows: list[DatasetRow] | None = None,
        replay: dict[ResultKey, dict[str, Any]] | None = None,
        base_urls: tuple[str | None, str | None] = (None, None),  # with credentials: (model, judge)
    ):
        self.config = config
        self.writer = writer
        self.judge_key = judge_key
        self._experiment_noted = False
        self.model_endpoint = config.facet_model.endpoint(model_key, base_urls[0])
        self.judge_endpoint = config.judge.endpoint(judge_key, base_urls[1])
        self.replay = replay or {}  # (row id, trial) -> its line of an earlier results file
        # made before the runner starts its event loop (httpx binds to a loop on first use only), so
        # the first rows do not wait for imports and client set-up
        self.model_client = make_chat_client(
            self.model_endpoint,
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            concurrency=config.concurrency,
            deadline=config.call_deadline,
        )
        # simulated calls cost nothing: only real endpoints' results are kept
        paid = not (self.model_endpoint.simulated and self.judge_endpoint.simulated)
        path = Path(config.store_path) if config.store_path and paid else None
        self.cache = CallCache(path, read=config.use_cache)
        budget = CostBudget(config.max_cost)  # --max-cost: one budget for both roles
        model, prices = config.facet_model.model, config.prices
        self.model_meter = UsageMeter("facet model", model, prices, budget, EXPECTED_FACET_TOKENS)
        self.judge_meter = UsageMeter("judge", config.judge.model, prices, budget)
        if rows:
            self.preload(rows)

    def report_policy(self, path: Path, every: float = 1.0) -> None:
        """Write the rate-limit policies' state (rate, in flight, 429s, slow calls) to `path` every
        second, for the parent's progress line (the runner's own output is not shown)."""
        import threading
        import time

        from facetopt.clients.llm.client import policy_stats

        def loop() -> None:
            while True:
                parts = []
                for role, endpoint in (("model", self.model_endpoint), ("judge", self.judge_endpoint)):
                    if (stats := policy_stats(endpoint)) is not None:
                        parts.append(f"{role}: {stats.describe()}")
                if parts:
                    path.write_text("; ".join(parts), encoding="utf-8")
                time.sleep(every)

        threading.Thread(target=loop, name="policy-report", daemon=True).start()

    def model_request(self, facet: FacetPrompt, text: str, row_id: str) -> ChatRequest:
        return facet_request(facet, text, self.config.facet_model.model, self.config.max_tokens, row_id)

    def model_cache_key(self, request: ChatRequest, trial: int) -> str:
        return call_key(self.model_endpoint, request.messages, request.params(), trial)

    def judge_cache_key(self, question: str, output: str, expected: str, trial: int) -> str:
        content = {"scorer": FACTUALITY, "input": question, "output": output, "expected": expected}
        return call_key(self.judge_endpoint, content, {}, trial)

    def preload(self, rows: list[DatasetRow]) -> None:
        """Read every cached model output of these rows and trials, then the cached verdicts on them."""
        if not self.cache.read:
            return
        model_keys: dict[str, tuple[DatasetRow, int]] = {}
        for row in rows:
            facet = self.config.facet(row.facet_name)
            if facet is None:
                continue
            request = self.model_request(facet, str(row.input.get("preprocessed_text") or ""), row.id)
            for trial in range(self.config.trials):
                model_keys[self.model_cache_key(request, trial)] = (row, trial)
        self.cache.load(list(model_keys))
        judge_keys = []
        for key, (row, trial) in model_keys.items():
            cached = self.cache.entries.get(key)
            output, unreadable = value_or_error(cached) if isinstance(cached, str) else ("", "not cached")
            if not unreadable and row.expected is not None:
                question = judge_question(row.facet_name, str(row.input.get("preprocessed_text") or ""))
                judge_keys.append(self.judge_cache_key(question, output, str(row.expected), trial))
        self.cache.load(judge_keys)

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
        output, error, from_cache = "", None, False
        used: dict[str, int] | None = None  # the reply's token usage, when a call was sent
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
                request = self.model_request(facet, text, row_id)
                key = self.model_cache_key(request, metadata["trial"])
                cached = self.cache.get(key)
                if isinstance(cached, str):
                    output, error = value_or_error(cached)
                    from_cache = True
                    self.model_meter.cached(1)
                elif not self.model_meter.admit(estimate := self.model_meter.estimate(request.messages)):
                    error = NOT_SENT_COST
                else:
                    result = await chat_once(self.model_client, request)
                    output, error = value_or_error(result.text) if result.ok else ("", result.error)
                    used = result.usage
                    self.model_meter.settle(
                        estimate, result.prompt_tokens, result.completion_tokens, result.ok
                    )
                    if result.ok and result.text is not None:  # the reply as paid for; read on every use
                        self.cache.put(key, "model", result.text, self.model_endpoint)
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
                "model_from_cache": from_cache,
                **({"model_usage": used} if used is not None else {}),
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
        factuality = FactualityScorer(
            make_factuality(self.config, self.judge_endpoint),
            self.writer,
            self.judge_deadline,
            [self.judge_key],
            cache=self.cache,
            cache_key=self.judge_cache_key,
            endpoint=self.judge_endpoint,
            make_score=_factuality_score,
            meter=self.judge_meter,
        )
        scorers = [*rule_scorers(self.config, self.writer), factuality]
        return [replaying(scorer, self.replay, self.writer) for scorer in scorers] if self.replay else scorers

    @property
    def judge_deadline(self) -> float:
        # the policy gives up at the call deadline; this bounds a judgement whatever happens inside
        return self.config.call_deadline + self.config.request_timeout + 30.0


def make_factuality(config: EvalConfig, endpoint: Any) -> Any:
    """autoevals' Factuality on the judge's client, made with the scorers before the runner's loop
    starts. An instance, not Factuality.partial (which fails on a second `client` keyword). Its 429s
    never reach autoevals' own retries: the client's policy retries them until the call's deadline.
    Its usage hook gives each judgement's tokens to the scorer (`add_judge_usage`)."""
    from autoevals import Factuality
    from autoevals.oai import LLMClient

    client = make_async_client(
        endpoint,
        timeout=config.request_timeout,
        max_retries=config.max_retries,
        concurrency=config.concurrency,
        deadline=config.call_deadline,
        on_usage=add_judge_usage,
    )
    return Factuality(model=config.judge.model, client=LLMClient(openai=client, is_async=True))


def _factuality_score(value: float, metadata: dict) -> Any:
    from autoevals import Score

    return Score(name=FACTUALITY, score=value, metadata=metadata)


# -- the Eval arguments ----------------------------------------------------------------------------


def read_rows(path: Path) -> list[DatasetRow]:
    with path.open(encoding="utf-8") as handle:
        return [DatasetRow.model_validate_json(line) for line in handle if line.strip()]
