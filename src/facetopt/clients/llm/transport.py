"""httpx2 transports that send every request through a `RateLimitPolicy` (rate_limit.py).

Imported only inside functions (it imports httpx2): `client.make_async_client` wraps its
connection pool in `PolicyTransport`, `make_sync_client` in `SyncPolicyTransport`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2

from facetopt.clients.llm.rate_limit import (
    _CONNECT_TRIES_BEFORE_SUCCESS,
    ATTEMPTS_HEADER,
    DEFAULT_DEADLINE,
    CallDeadlineExceeded,
    EndpointDead,
    RateLimitPolicy,
    _backoff,
    _refusal_status,
    _retryable_status,
    _throttled,
    refusal_message,
    retry_after,
)
from facetopt.errors import redact_credentials

_CONNECT_FAILURES = (httpx2.ConnectError, httpx2.ConnectTimeout)
_RETRYABLE_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


class _Attempts:
    """The retry decisions shared by the async and sync transports, for one call."""

    def __init__(self, policy: RateLimitPolicy, deadline: float, max_retries: int | None):
        self.policy = policy
        self.deadline_at = time.monotonic() + deadline
        self.deadline = deadline
        self.max_retries = max_retries
        self.count = 0

    def _room(self, wait: float) -> bool:
        retries_left = self.max_retries is None or self.count <= self.max_retries
        run_room = self.policy.retry_room()
        in_run = run_room is None or wait <= run_room
        return retries_left and in_run and time.monotonic() + wait <= self.deadline_at

    def before_send(self) -> None:
        """Raises EndpointDead when the (endpoint, model) was judged dead: nothing more is sent."""
        exc: EndpointDead | CallDeadlineExceeded
        if (dead := self.policy.dead) is not None:
            exc = EndpointDead(dead)
        else:
            try:  # the run had no success for the call deadline while retrying: queued calls are not sent
                self.policy.check_room(0.0)
            except CallDeadlineExceeded as stalled:
                exc = stalled
            else:
                return
        exc.facetopt_attempts = self.count
        raise exc

    def note_refusal(self, request: Any, response: Any) -> None:
        """Called with a refused reply whose body was read: counts toward a dead verdict."""
        if not _refusal_status(response.status_code) or _throttled(response):
            return
        auth = request.headers.get("authorization") or ""
        secrets = [auth.removeprefix("Bearer ").strip(), auth]
        try:
            said = redact_credentials(refusal_message(response.content), secrets)
        except Exception:  # a body that could not be read
            said = ""
        self.policy.refusal(response.status_code, said, retried=_retryable_status(response.status_code))

    def after_response(self, response: Any) -> float | None:
        """Seconds to wait before retrying, or None to hand the response back."""
        wait = self._decide(response)
        if wait is None:
            response.headers[ATTEMPTS_HEADER] = str(self.count)
        return wait

    def _decide(self, response: Any) -> float | None:
        if _throttled(response):
            wait = self.policy.refused(response.headers)
            if self._room(wait):
                return wait
            if self.max_retries is None or self.count <= self.max_retries:
                exc = CallDeadlineExceeded(
                    f"rate limited (HTTP {response.status_code}): gave up at the per-call deadline "
                    f"(--call-deadline, {self.deadline:.0f}s, which also ends a run's retries without a success)"
                )
                exc.facetopt_attempts = self.count
                raise exc
            return None
        if _retryable_status(response.status_code):
            self.before_send()  # the refusal just counted may have made the endpoint dead
            self.policy.failed()
            given = retry_after(response.headers)
            wait = given if given is not None else _backoff(self.count)
            return wait if self._room(wait) else None
        self.policy.succeeded(progress=response.status_code < 400)
        return None

    def after_error(self, exc: Exception) -> float:
        """Seconds to wait before retrying; re-raises when the error is final."""
        exc.facetopt_attempts = self.count  # type: ignore[attr-defined]
        if not isinstance(exc, _RETRYABLE_ERRORS):
            raise exc
        if isinstance(exc, _CONNECT_FAILURES) and not self.policy.ever_succeeded:
            if self.count >= _CONNECT_TRIES_BEFORE_SUCCESS:
                raise exc  # never reached: let callers fail fast ("endpoint unreachable")
        self.policy.failed()
        wait = _backoff(self.count)
        if not self._room(wait):
            raise exc
        return wait


async def _read(response: httpx2.Response) -> None:
    try:
        await response.aread()
    except httpx2.HTTPError:
        pass


async def _drain(response: httpx2.Response) -> None:
    """Read a refused reply's (small) body, so its connection goes back to the pool, not closed."""
    try:
        await response.aread()
    except httpx2.HTTPError:
        pass
    await response.aclose()


class PolicyTransport(httpx2.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        policy: RateLimitPolicy,
        deadline: float = DEFAULT_DEADLINE,
        max_retries: int | None = None,
    ):
        self.inner, self.policy, self.deadline, self.max_retries = inner, policy, deadline, max_retries

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        attempts = _Attempts(self.policy, self.deadline, self.max_retries)
        while True:
            attempts.before_send()
            await self.policy.wait_turn()
            attempts.count += 1
            token = self.policy.begin()
            try:
                response = await self.inner.handle_async_request(request)
            except Exception as exc:
                self.policy.end(token)
                await asyncio.sleep(attempts.after_error(exc))
                continue
            self.policy.end(token)
            if _refusal_status(response.status_code):
                await _read(response)
                attempts.note_refusal(request, response)
            wait = attempts.after_response(response)
            if wait is None:
                return response
            await _drain(response)
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SyncPolicyTransport(httpx2.BaseTransport):
    def __init__(
        self,
        inner: httpx2.BaseTransport,
        policy: RateLimitPolicy,
        deadline: float = DEFAULT_DEADLINE,
        max_retries: int | None = None,
    ):
        self.inner, self.policy, self.deadline, self.max_retries = inner, policy, deadline, max_retries

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        attempts = _Attempts(self.policy, self.deadline, self.max_retries)
        while True:
            attempts.before_send()
            self.policy.wait_turn_sync()
            attempts.count += 1
            token = self.policy.begin()
            try:
                response = self.inner.handle_request(request)
            except Exception as exc:
                self.policy.end(token)
                time.sleep(attempts.after_error(exc))
                continue
            self.policy.end(token)
            if _refusal_status(response.status_code):
                try:
                    response.read()
                except httpx2.HTTPError:
                    pass
                attempts.note_refusal(request, response)
            wait = attempts.after_response(response)
            if wait is None:
                return response
            try:
                response.read()  # read, so the connection goes back to the pool
            except httpx2.HTTPError:
                pass
            response.close()
            time.sleep(wait)

    def close(self) -> None:
        self.inner.close()
