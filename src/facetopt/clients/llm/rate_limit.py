"""One rate-limit policy per (endpoint, model) for every paid model call.

Entry points (also for audit, cost tracking and the optimiser's proposer):
- `policy_for(endpoint_label, model)`: the process-wide `RateLimitPolicy` of that pair; every
  client made for the pair shares it, so labelling, the facet model, the judge and later roles
  on the same endpoint and model learn one rate together.
- `PolicyTransport(inner, policy, deadline=..., max_retries=None)`: an httpx2 transport that sends
  every request through the policy. `client.make_async_client` installs it and turns the openai
  SDK's own retries off (`max_retries=0`), so 429s reach the policy; autoevals gets that same
  client, so its 100 `RateLimitError` retries never fire: a call that is still refused at its
  deadline ends as `CallDeadlineExceeded` (the SDK reports it as a connection error), not as a 429.

What the policy does:
- Paces sends to a learned rate (no limit until the first 429). On 429 (or 503 with Retry-After)
  it learns the allowed rate: from `x-ratelimit-limit-requests` (requests per minute, as OpenAI
  sends it) when present, else the replies that succeeded in the last window (what the server
  admitted; for the first two cuts, at least 0.85 of what was sent in it, since replies may
  still be on their way). It cuts at most once per window (plain AIMD, which halves on every
  refusal, averages about 0.75 of a cap), then grows per window without a refusal: by a tenth
  until the second cut (a first estimate taken during the server's burst allowance can be
  low), then by 5%; once three windows passed without a refusal, by half before the second cut
  and by a tenth after it.
- Retries 429, 408, 5xx, timeouts and connection resets until the call's deadline (default 10
  minutes, `--call-deadline` / FACET_OPTIMIZER_CALL_DEADLINE), waiting Retry-After /
  retry-after-ms when given, else exponential backoff with jitter (0.5 s doubling, 30 s cap). A
  refused connection is retried only once the endpoint has answered before, so an unreachable
  endpoint still fails fast.
- Counts what the progress line shows: current rate, calls in flight, 429s, retries, slow calls.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

DEFAULT_DEADLINE = 600.0
ATTEMPTS_HEADER = "x-facetopt-attempts"  # set on the final response: how many sends it took
SLOW_AFTER = 30.0  # a call in flight longer than this is "slow" in the progress line
_GROWTH = 1.05  # per window without a refusal, once the rate was cut twice
_PROBE_GROWTH = 1.1  # per window before the second cut (a burst allowance can skew the first)
_FAST_GROWTH = 1.5  # per window once no refusal came for _FAR_WINDOWS windows after the last cut
_FAR_WINDOWS = 3
_CUT = 0.85  # a cut keeps at least this share of the rate sent in the last window
_AHEAD = 0.5  # seconds: how far ahead a send slot may be reserved
_MIN_RATE = 0.2
_CONNECT_TRIES_BEFORE_SUCCESS = 2


class CallDeadlineExceeded(Exception):
    """A call still refused (or failing) when its deadline passed."""


@dataclass(frozen=True)
class PolicyStats:
    rate: float | None  # requests per second the policy paces to; None: not limited
    in_flight: int
    throttled: int  # 429s (and 503s with Retry-After) seen
    retries: int
    slow: int  # calls in flight for more than SLOW_AFTER seconds
    slowest: float  # seconds, the longest call in flight

    def describe(self) -> str:
        rate = f"{self.rate:.1f}/s" if self.rate is not None else "unlimited"
        parts = [f"rate {rate}", f"in flight {self.in_flight}", f"429s {self.throttled}"]
        if self.retries:
            parts.append(f"retries {self.retries}")
        if self.slow:
            parts.append(f"slow {self.slow} (longest {self.slowest:.0f}s)")
        return " · ".join(parts)


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds; an HTTP date is read as 1 s)."""
    ms = _seconds(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    raw = headers.get("retry-after")
    seconds = _seconds(raw)
    return seconds if seconds is not None or not raw else 1.0


def header_rate(headers: Any) -> float | None:
    """Requests per second from `x-ratelimit-limit-requests` (a per-minute limit), if sent."""
    limit = _seconds(headers.get("x-ratelimit-limit-requests"))
    return limit / 60.0 if limit else None


class RateLimitPolicy:
    """The learned rate and counters of one (endpoint, model). Thread-safe; no event-loop state."""

    def __init__(self, name: str, window: float = 1.0):
        self.name = name
        self.window = window
        self._lock = threading.Lock()
        self.rate: float | None = None
        self._next_send = 0.0
        self._paused_until = 0.0
        self._cut_until = 0.0
        self._grown_at = 0.0
        self._successes: deque[float] = deque()
        self._sends: deque[float] = deque()
        self._started: dict[int, float] = {}
        self._ids = 0
        self.ever_succeeded = False
        self._cuts = 0
        self.throttled = 0
        self.retries = 0

    # -- sending ---------------------------------------------------------------------------------

    def _slot(self) -> tuple[float, bool]:
        """(seconds to wait, whether a send slot was reserved). Slots are reserved at most
        _AHEAD seconds ahead; a caller further back waits and asks again, so a rate that changes
        (grows after a low estimate) applies to everyone still waiting."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._paused_until)
            if self.rate is not None:
                start = max(start, self._next_send)
                if start - now > _AHEAD:
                    return min(start - now - _AHEAD, _AHEAD) + random.random() * 0.05, False
                self._next_send = start + 1.0 / self.rate
            self._sends.append(start)
            return start - now, True

    async def wait_turn(self) -> None:
        while True:
            delay, reserved = self._slot()
            if delay > 0:
                await asyncio.sleep(delay)
            if reserved:
                return

    def wait_turn_sync(self) -> None:
        while True:
            delay, reserved = self._slot()
            if delay > 0:
                time.sleep(delay)
            if reserved:
                return

    def begin(self) -> int:
        with self._lock:
            self._ids += 1
            self._started[self._ids] = time.monotonic()
            return self._ids

    def end(self, token: int) -> None:
        with self._lock:
            self._started.pop(token, None)

    # -- learning --------------------------------------------------------------------------------

    def succeeded(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.ever_succeeded = True
            self._successes.append(now)
            while self._successes and self._successes[0] < now - self.window:
                self._successes.popleft()
            if self.rate is not None and now >= self._cut_until and now - self._grown_at >= self.window:
                # well past the last refusal the rate was set too low (replies were slow to come
                # back when it was learned): climb back fast
                # (once the rate was cut twice it is near the cap: climbing back fast from there
                # overshoots it by half and draws a window of refusals every few windows)
                far = now - self._cut_until > _FAR_WINDOWS * self.window
                probing = self._cuts < 2
                if far:
                    self.rate *= _FAST_GROWTH if probing else _PROBE_GROWTH
                else:
                    self.rate *= _PROBE_GROWTH if probing else _GROWTH
                self._grown_at = now

    def refused(self, headers: Any) -> float:
        """A 429 (or 503 with Retry-After): learn the rate; seconds this request should wait."""
        wait = retry_after(headers)
        with self._lock:
            now = time.monotonic()
            self.throttled += 1
            self.retries += 1
            if now >= self._cut_until:
                for times in (self._successes, self._sends):
                    while times and times[0] < now - self.window:
                        times.popleft()
                observed = len(self._successes) / self.window
                sent = len(self._sends) / self.window
                hinted = header_rate(headers)
                new: float | None = None
                if hinted:
                    new = hinted
                elif observed > 0:
                    # what got through is the cap only once the server refuses; while replies are
                    # slow to come back (the first cuts) it reads low, and pacing below the cap
                    # costs more than a few more refusals: then never cut below 0.85 of what was
                    # sent. Later, what got through is the cap: a floor on what was sent would
                    # keep a rate far over the cap (each cut 15%, each window 5% back)
                    new = max(observed, _CUT * sent) if self._cuts < 2 else observed
                    if self.rate is not None:
                        new = min(self.rate, new)
                elif not self._started:  # nothing got through and nothing is out: a storm
                    self._paused_until = max(self._paused_until, now + (wait or self.window))
                # else: refusals come back before the admitted replies; learn on a later refusal
                if new is not None:
                    self.rate = max(_MIN_RATE, new)
                    self._cuts += 1
                    self._next_send = max(self._next_send, now)
                    self._cut_until = self._grown_at = now + max(self.window, wait or 0.0)
        return wait if wait is not None else 1.0 / (self.rate or 1.0)

    def failed(self) -> None:
        with self._lock:
            self.retries += 1

    def stats(self) -> PolicyStats:
        with self._lock:
            now = time.monotonic()
            ages = [now - t for t in self._started.values()]
            return PolicyStats(
                rate=self.rate,
                in_flight=len(ages),
                throttled=self.throttled,
                retries=self.retries,
                slow=sum(a > SLOW_AFTER for a in ages),
                slowest=max(ages, default=0.0),
            )


_POLICIES: dict[tuple[str, str], RateLimitPolicy] = {}
_REGISTRY_LOCK = threading.Lock()


def policy_for(endpoint_label: str, model: str) -> RateLimitPolicy:
    """The one policy of (endpoint, model) in this process."""
    with _REGISTRY_LOCK:
        key = (endpoint_label, model)
        if key not in _POLICIES:
            _POLICIES[key] = RateLimitPolicy(f"{model} at {endpoint_label}")
        return _POLICIES[key]


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.75 + random.random() / 2)


def _retryable_status(status: int) -> bool:
    return status in (408, 409) or status >= 500


def _throttled(response: Any) -> bool:
    return response.status_code == 429 or (
        response.status_code == 503 and retry_after(response.headers) is not None
    )
