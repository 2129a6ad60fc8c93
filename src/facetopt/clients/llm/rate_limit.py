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
- Ends a dead endpoint (`EndpointDead`): refusals by a live server (5xx, 4xx other than 408, 409
  and 429; a 503 with Retry-After is a throttle) with no success between them mark the
  (endpoint, model) dead once DEAD_AFTER_SECONDS passed since the first of them (retried
  refusals), or after DEAD_AFTER_REFUSALS of them in a row (4xx, not retried: 401, 403 and 404
  any time, other 4xx only before any success, as they may be one row's fault). From then
  on nothing is sent; every call fails at once with the last status and the server's message.
- Bounds the run, not only each call: no retry is made once the (endpoint, model) has had no
  success for the call deadline (counted from the last success, or from when the run's client
  was made), so queued calls do not each get a fresh deadline.
- Counts what the progress line shows: current rate, calls in flight, 429s, retries, slow calls,
  and once retries start, when the run gives up without a success.
"""

from __future__ import annotations

import asyncio
import json
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
DEAD_AFTER_SECONDS = 60.0  # retried refusals (5xx) with no success for this long: the endpoint is dead
DEAD_AFTER_REFUSALS = 8  # refusals in a row with no success (4xx, not retried): the endpoint is dead
_MIN_DEAD_REFUSALS = 4  # a dead verdict by time still needs this many refusals
_ENDPOINT_WIDE = (401, 403, 404)  # refusals that are never one row's fault


class CallDeadlineExceeded(Exception):
    """A call still refused (or failing) when its deadline passed."""

    facetopt_attempts = 0  # the sends the call took, set where it is raised


ENDPOINT_DEAD = "endpoint dead"  # starts the reason of a call failed by (or after) a dead verdict


class EndpointDead(Exception):
    """The (endpoint, model) refused every call for long enough: nothing more is sent to it."""

    facetopt_attempts = 0

    def __str__(self) -> str:
        return f"{ENDPOINT_DEAD}: {self.args[0] if self.args else ''}"


def _clock(seconds_from_now: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(time.time() + seconds_from_now))


def refusal_message(content: bytes) -> str:
    """The server's own words from an error reply's body: `error.message`, `message`, else the text."""
    text = content.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    inner = body.get("error") if isinstance(body, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else inner if isinstance(inner, str) else None
    if message is None and isinstance(body, dict):
        message = body.get("message")
    return " ".join(str(message if message is not None else text).split())[:200]


@dataclass(frozen=True)
class PolicyStats:
    rate: float | None  # requests per second the policy paces to; None: not limited
    in_flight: int
    throttled: int  # 429s (and 503s with Retry-After) seen
    retries: int
    slow: int  # calls in flight for more than SLOW_AFTER seconds
    slowest: float  # seconds, the longest call in flight
    gives_up_in: float | None = None  # seconds until the run stops retrying without a success

    def describe(self) -> str:
        rate = f"{self.rate:.1f}/s" if self.rate is not None else "unlimited"
        parts = [f"rate {rate}", f"in flight {self.in_flight}", f"429s {self.throttled}"]
        if self.retries:
            parts.append(f"retries {self.retries}")
            if self.gives_up_in is not None:
                parts.append(f"gives up at {_clock(self.gives_up_in)} without a success")
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
        self.stall_limit: float | None = None  # the call deadline, as a bound for the whole run
        self._progress_at = time.monotonic()  # the last success, or the start of the run
        self._refusals = 0  # refusals since the last success
        self._refusing_since: float | None = None
        self.dead: str | None = None  # why nothing more is sent (EndpointDead), once decided

    def start_run(self, stall_limit: float) -> None:
        """A new client for this (endpoint, model): its run's clock starts now, and a dead verdict
        of an earlier run in this process is forgotten."""
        with self._lock:
            self._progress_at = time.monotonic()
            self.stall_limit = stall_limit if self.stall_limit is None else max(self.stall_limit, stall_limit)
            self._refusals, self._refusing_since, self.dead = 0, None, None

    def retry_room(self) -> float | None:
        """Seconds left before the run stops retrying without a success (None: no bound)."""
        if self.stall_limit is None:
            return None
        with self._lock:
            return self._progress_at + self.stall_limit - time.monotonic()

    def refusal(self, status: int, message: str, retried: bool) -> None:
        """A live server refused a call (5xx, or 4xx other than 408/409/429): maybe the endpoint is dead."""
        with self._lock:
            now = time.monotonic()
            self._refusals += 1
            if self._refusing_since is None:
                self._refusing_since = now
            lasted = now - self._refusing_since
            if self.dead is not None:
                return
            # a 4xx that is not retried may be the row's own fault (400, 413, 422...): those count only
            # before any success; a refused key or an unknown model (401, 403, 404) always
            endpoint_wide = not self.ever_succeeded or status in _ENDPOINT_WIDE
            by_count = not retried and endpoint_wide and self._refusals >= DEAD_AFTER_REFUSALS
            by_time = lasted >= DEAD_AFTER_SECONDS and self._refusals >= _MIN_DEAD_REFUSALS
            if by_count or by_time:
                since = "" if self.ever_succeeded else " (no call has succeeded)"
                self.dead = (
                    f"{self.name} refused {self._refusals} calls in a row over {lasted:.0f}s{since}; "
                    f"last: HTTP {status}: {message or 'no message'}"
                )

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

    def check_room(self, delay: float) -> None:
        """A wait that would end after the run's retries stopped (a long Retry-After pause) is not made."""
        room = self.retry_room()
        if room is not None and delay > room and self.retries:
            raise CallDeadlineExceeded(
                f"no success from this endpoint for {self.stall_limit:.0f}s while retrying: the run gave "
                "up at the per-call deadline (--call-deadline), the bound of the run's retries"
            )

    async def wait_turn(self) -> None:
        while True:
            delay, reserved = self._slot()
            if delay > 0:
                self.check_room(delay)
                await asyncio.sleep(delay)
            if reserved:
                return

    def wait_turn_sync(self) -> None:
        while True:
            delay, reserved = self._slot()
            if delay > 0:
                self.check_room(delay)
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

    def succeeded(self, progress: bool = True) -> None:
        """A reply the server admitted (for the rate); `progress`: a success, not a 4xx refusal."""
        with self._lock:
            now = time.monotonic()
            if progress:
                self.ever_succeeded = True
                self._progress_at = now
                self._refusals, self._refusing_since = 0, None
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
                gives_up_in=None if self.stall_limit is None else self._progress_at + self.stall_limit - now,
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


def _refusal_status(status: int) -> bool:
    """A live server's refusal that counts toward a dead verdict (throttles are told apart later)."""
    return status >= 500 or (400 <= status < 500 and status not in (408, 409, 429))


def _throttled(response: Any) -> bool:
    return response.status_code == 429 or (
        response.status_code == 503 and retry_after(response.headers) is not None
    )
