"""Retrying Braintrust REST calls on 408/429/5xx and dropped connections, honouring Retry-After.

The SDK retries most REST calls itself but never `POST /v1/experiment` (nor the requests facetopt
sends through its transport with retries off). `policy()` is the one place that chooses the
delays: it uses the shared rate-limit policy of clients/llm when that exists, else the small
exponential backoff below. Environment overrides (used by tests and by the eval runner):
FACETOPT_BT_RETRY_ATTEMPTS, FACETOPT_BT_RETRY_BACKOFF, FACETOPT_BT_TIMEOUT (seconds per request),
FACETOPT_BT_DEADLINE (seconds per call, retries included).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS_ENV = "FACETOPT_BT_RETRY_ATTEMPTS"
BACKOFF_ENV = "FACETOPT_BT_RETRY_BACKOFF"
TIMEOUT_ENV = "FACETOPT_BT_TIMEOUT"  # seconds one request may wait for an answer
DEADLINE_ENV = "FACETOPT_BT_DEADLINE"  # seconds one call may take, its retries included
DEFAULT_TIMEOUT_S = 60.0  # a /btql page over a large project can take tens of seconds
DEFAULT_DEADLINE_S = 180.0

log = logging.getLogger("facetopt.braintrust")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.5  # first delay; doubles per attempt
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 30.0
    statuses: frozenset[int] = RETRYABLE_STATUSES

    def retryable(self, status: int | None) -> bool:
        return status is None or status in self.statuses  # None: the connection failed

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after_s)
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)


def policy() -> RetryPolicy:
    """The policy in force (environment overrides applied)."""
    base = RetryPolicy()
    attempts = _env_number(ATTEMPTS_ENV, float(base.attempts))
    backoff = _env_number(BACKOFF_ENV, base.backoff_s)
    return RetryPolicy(attempts=max(1, int(attempts)), backoff_s=max(0.0, backoff))


def request_timeout() -> float:
    return max(0.1, _env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


def call_deadline() -> float:
    return max(0.1, _env_number(DEADLINE_ENV, DEFAULT_DEADLINE_S))


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def with_retries(
    fn: Callable[[], T],
    classify: Callable[[BaseException], tuple[int | None, float | None] | None],
    *,
    what: str,
    retry_policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    deadline_s: float | None = None,
) -> T:
    """Call `fn` until it succeeds or fails for good. `classify(exc)` gives (status or None for a
    dropped connection, Retry-After seconds) for a failure worth retrying, or None to re-raise.
    No retry starts when its delay would end past `deadline_s` (default: call_deadline())."""
    chosen = retry_policy or policy()
    deadline = time.monotonic() + (call_deadline() if deadline_s is None else deadline_s)
    for attempt in range(1, chosen.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None or attempt == chosen.attempts or not chosen.retryable(verdict[0]):
                raise
            delay = chosen.delay(attempt, verdict[1])
            if time.monotonic() + delay >= deadline:
                log.debug("not retrying %s: the call's deadline would pass", what)
                raise
            log.debug("retrying %s in %.2fs after %s (attempt %d)", what, delay, verdict[0], attempt)
            sleep(delay)
    raise AssertionError("unreachable")
