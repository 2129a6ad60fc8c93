"""The eval's scorers: the rules of facets/scorers.py, and autoevals `Factuality` bounded in time.

A row whose model call failed (`metadata.eval_error`) scores None everywhere. Every scorer reports
its value (or its error) to the results writer, which completes the row's line in the results file.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

from facetopt.clients.prompt_file import FacetPrompt
from facetopt.clients.redaction import redact_credentials
from facetopt.domain.cost import NOT_SENT_COST
from facetopt.facets import scorers as rules
from facetopt.facets.cost import EXPECTED_JUDGE_TOKENS, JUDGE_TEMPLATE_TOKENS, estimate_text_tokens
from facetopt.services.cost import UsageMeter
from facetopt.services.eval.config import EvalConfig
from facetopt.services.eval.results import ERROR_KEY, ResultsWriter, result_key

FACTUALITY = "Factuality"
RuleCompute = Callable[[str, str | None, str | None, FacetPrompt | None], float | None]


def judge_question(facet_name: str, text: str) -> str:
    """The [Question] Factuality shows its judge: which facet, of which conversation."""
    return f"What is the {facet_name!r} facet value of this conversation?\n\n{text}"


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def rule_scorer(name: str, compute: RuleCompute, config: EvalConfig, writer: ResultsWriter) -> Any:
    """An async scorer named `name`: `compute(facet name, output, expected, facet prompt)`."""

    async def scorer(
        output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **_: Any
    ) -> float | None:
        value = None
        if not (metadata or {}).get(ERROR_KEY):
            facet_name = str((input or {}).get("facet_name", ""))
            try:
                value = compute(facet_name, output, expected, config.facet(facet_name))
            except Exception as exc:  # e.g. a facet's invalid no_match_pattern: keep the row
                writer.scored(result_key(metadata), name, None, error=_failure(exc))
                raise
        writer.scored(result_key(metadata), name, value)
        return value

    scorer.__name__ = name
    scorer.__qualname__ = name
    return scorer


def rule_scorers(config: EvalConfig, writer: ResultsWriter) -> list[Any]:
    def pattern(facet: FacetPrompt | None) -> str | None:
        return facet.no_match_pattern if facet else None

    computes: dict[str, RuleCompute] = {
        "binary_decision_match": lambda n, o, e, f: rules.binary_decision_match(o, e, pattern(f)),
        "positive_recall": lambda n, o, e, f: rules.positive_recall(o, e, pattern(f)),
        "negative_specificity": lambda n, o, e, f: rules.negative_specificity(o, e, pattern(f)),
        "sentiment_label_correct": lambda n, o, e, f: rules.sentiment_label_correct(n, o, e),
    }
    return [rule_scorer(name, compute, config, writer) for name, compute in computes.items()]


JUDGE_USAGE: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "judge_usage", default=None
)


def add_judge_usage(usage: dict[str, int]) -> None:
    """The judge client's usage hook: add a reply's tokens to the judgement in progress."""
    current = JUDGE_USAGE.get()
    if current is not None:
        for name, value in usage.items():
            current[name] = current.get(name, 0) + value


def judge_estimate(meter: UsageMeter | None, question: str, output: Any, expected: Any) -> float:
    """Dollars a Factuality judgement is expected to cost: autoevals' template around the question,
    the expert answer and the submission, and a short reasoned choice as the reply."""
    if meter is None:
        return 0.0
    text = f"{question}{expected}{output or ''}"
    prompt = estimate_text_tokens(text) + JUDGE_TEMPLATE_TOKENS
    return meter.estimate_tokens(prompt, EXPECTED_JUDGE_TOKENS)


class JudgeFailed(RuntimeError):
    """A Factuality judgement that failed, its message cleared of the judge's key."""


class FactualityScorer:
    """autoevals Factuality, skipped (None) on rows whose model call failed, recorded in the results file.

    A failed judgement is re-raised as `JudgeFailed` with the judge's key (and anything shaped like
    a key) masked: some providers echo the key in their error, and the runner logs the exception
    to Braintrust and facetopt shows it in its warnings.
    """

    def __init__(
        self,
        factuality: Any,
        writer: ResultsWriter,
        deadline: float,
        secrets: list[str | None] | None = None,
        cache: Any = None,
        cache_key: Callable[[str, str, str, int], str] | None = None,
        endpoint: Any = None,
        make_score: Callable[[float, dict], Any] | None = None,
        meter: UsageMeter | None = None,
    ):
        self.factuality = factuality
        self.writer = writer
        self.deadline = deadline
        self.secrets = list(secrets or [])
        self.cache, self.cache_key, self.endpoint = cache, cache_key, endpoint
        self.make_score = make_score  # (score, metadata) -> the autoevals Score a cache hit returns
        self.meter = meter  # the judge's tokens and dollars, within the run's --max-cost

    def _settle(self, estimate: float, used: dict[str, int], replied: bool) -> None:
        if self.meter is not None:
            self.meter.settle(estimate, used["prompt_tokens"], used["completion_tokens"], replied)

    def _name(self) -> str:
        return FACTUALITY

    async def eval_async(
        self, output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **_: Any
    ) -> Any:
        key = result_key(metadata)
        if (metadata or {}).get(ERROR_KEY) or expected is None:
            self.writer.scored(key, FACTUALITY, None)
            return None
        facet_name = str((input or {}).get("facet_name", ""))
        question = judge_question(facet_name, str((input or {}).get("preprocessed_text") or ""))
        cache_key = None
        if self.cache is not None and self.cache_key is not None:
            cache_key = self.cache_key(question, output or "", str(expected), key[1])
            cached = self.cache.get(cache_key)
            if isinstance(cached, dict) and cached.get("score") is not None and self.make_score is not None:
                self.writer.scored(key, FACTUALITY, cached["score"], from_cache=True)
                if self.meter is not None:
                    self.meter.cached(1)
                return self.make_score(cached["score"], cached.get("metadata") or {})
        estimate = judge_estimate(self.meter, question, output, expected)
        if self.meter is not None and not self.meter.admit(estimate):
            self.writer.scored(key, FACTUALITY, None, error=NOT_SENT_COST)
            return None
        used = {"prompt_tokens": 0, "completion_tokens": 0}
        token = JUDGE_USAGE.set(used)  # the judge client's usage hook adds to it (tasks copy the context)
        try:
            score = await asyncio.wait_for(
                self.factuality.eval_async(output=output or "", expected=str(expected), input=question),
                timeout=self.deadline,
            )
        except Exception as exc:
            cause = exc.__cause__
            shown = cause if type(cause).__name__ == "CallDeadlineExceeded" else exc
            reason = redact_credentials(f"{type(shown).__name__}: {shown}", self.secrets)[:300]
            self._settle(estimate, used, replied=False)
            self.writer.scored(key, FACTUALITY, None, error=reason, usage=used)
            raise JudgeFailed(reason) from None
        finally:
            JUDGE_USAGE.reset(token)
        self._settle(estimate, used, replied=True)
        value = getattr(score, "score", None)
        if cache_key is not None and value is not None:
            metadata = getattr(score, "metadata", None) or {}
            self.cache.put(cache_key, "judge", {"score": value, "metadata": metadata}, self.endpoint)
        self.writer.scored(key, FACTUALITY, value, usage=used)
        return score
