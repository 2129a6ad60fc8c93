"""The eval's scorers: the rules of facets/decide/scorers.py, and autoevals `Factuality` bounded in time.

A row whose model call failed (`metadata.eval_error`) scores None everywhere. Every scorer reports
its value (or its error) to the results writer, which completes the row's line in the results file.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

from facetopt.clients.prompt_file import FacetPrompt
from facetopt.domain.cost import NOT_SENT_COST
from facetopt.errors import redact_credentials
from facetopt.facets.decide import scorers as rules
from facetopt.facets.decide.cost import EXPECTED_JUDGE_TOKENS, JUDGE_TEMPLATE_TOKENS, estimate_text_tokens
from facetopt.services.cost import UsageMeter
from facetopt.services.eval.config import EvalConfig
from facetopt.services.eval.results import ERROR_KEY, ResultsWriter, result_key

FACTUALITY = "Factuality"


def judge_question(facet_name: str, text: str) -> str:
    """The [Question] Factuality shows its judge: which facet, of which conversation."""
    return f"What is the {facet_name!r} facet value of this conversation?\n\n{text}"


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


BINARY_SCORER = "binary_classification_scores"
BINARY_SCORES = ("binary_decision_match", "positive_recall", "negative_specificity")
SENTIMENT_SCORER = "sentiment_label_correct"
SCORES_OF = {BINARY_SCORER: BINARY_SCORES}  # a scorer's score names when they are not just its own


def _pattern(facet: FacetPrompt | None) -> str | None:
    return facet.no_match_pattern if facet else None


def binary_metadata(facet_name: str, output: Any, expected: Any, pattern: str | None) -> dict[str, Any]:
    """What the original scorer attaches to each binary score: the facet type and both decisions."""
    out_negative = rules.is_none_like_output(output, pattern)
    exp_negative = None if expected is None else rules.is_none_like_expected(expected, pattern)
    return {
        "facet_type": "sentiment" if facet_name.strip().casefold() == rules.SENTIMENT_FACET else "binary",
        "output_is_positive": not out_negative,
        "expected_is_positive": None if exp_negative is None else not exp_negative,
        "output_is_negative": out_negative,
        "expected_is_negative": exp_negative,
    }


def binary_scorer(config: EvalConfig, writer: ResultsWriter) -> Any:
    """One scorer named `binary_classification_scores` returning three scores (the original's span name)."""

    async def binary_classification_scores(
        output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **_: Any
    ) -> list[dict[str, Any]]:
        key = result_key(metadata)
        facet_name = str((input or {}).get("facet_name", ""))
        values: dict[str, float | None] = dict.fromkeys(BINARY_SCORES)
        extra: dict[str, Any] = {}
        if not (metadata or {}).get(ERROR_KEY):
            try:
                pattern = _pattern(config.facet(facet_name))
                values = {
                    "binary_decision_match": rules.binary_decision_match(output, expected, pattern),
                    "positive_recall": rules.positive_recall(output, expected, pattern),
                    "negative_specificity": rules.negative_specificity(output, expected, pattern),
                }
                extra = binary_metadata(facet_name, output, expected, pattern)
            except Exception as exc:  # e.g. a facet's invalid no_match_pattern: keep the row
                for name in BINARY_SCORES:
                    writer.scored(key, name, None, error=_failure(exc))
                raise
        for name, value in values.items():
            writer.scored(key, name, value)
        return [{"name": name, "score": value, "metadata": extra} for name, value in values.items()]

    return binary_classification_scores


def sentiment_scorer(config: EvalConfig, writer: ResultsWriter) -> Any:
    async def sentiment_label_correct(
        output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **_: Any
    ) -> float | None:
        value = None
        if not (metadata or {}).get(ERROR_KEY):
            facet_name = str((input or {}).get("facet_name", ""))
            value = rules.sentiment_label_correct(facet_name, output, expected)
        writer.scored(result_key(metadata), SENTIMENT_SCORER, value)
        return value

    return sentiment_label_correct


def rule_scorers(config: EvalConfig, writer: ResultsWriter) -> list[Any]:
    """The original's scorer functions; their names are the score spans' names the SQL recipes use."""
    return [binary_scorer(config, writer), sentiment_scorer(config, writer)]


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
            # the policy's own verdicts read better than the SDK's "Connection error." around them
            shown = cause if type(cause).__name__ in ("CallDeadlineExceeded", "EndpointDead") else exc
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
