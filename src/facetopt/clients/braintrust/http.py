"""The HTTP adapter every braintrust SDK request of facetopt's own process goes through.

Without it the SDK's long-lived connections retry a dropped connection ten times with sleeps
doubling to 256 s, printed on stderr, and each request may wait 60 s. This adapter gives every
request a timeout (`FACETOPT_BT_TIMEOUT`, retry.py), retries (retry.py's policy, quietly, into the
debug log) only the requests nothing else retries: those sent without a timeout (the SDK's log
writes and registrations; the SDK's REST transport and facetopt's `request_json` pass a timeout
and retry themselves). Once `abandon()` is called (a flush deadline passed, Ctrl-C), every
further request fails at once, so the SDK's threads wind down; the CLI then exits without
waiting for the one request still in flight (`abandoned()`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from facetopt.clients.braintrust.retry import parse_retry_after, policy, request_timeout

log = logging.getLogger("facetopt.braintrust")
_ABANDONED = threading.Event()
_INSTALLED: BoundedAdapter | None = None
_LOCK = threading.Lock()


class Abandoned(requests.ConnectionError):
    """facetopt stopped waiting for Braintrust; no request is sent any more."""


class BoundedAdapter(HTTPAdapter):
    def __init__(self) -> None:
        super().__init__(pool_maxsize=32)

    def send(self, request: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        given = kwargs.get("timeout")
        limit = request_timeout()
        kwargs["timeout"] = limit if given is None else _capped(given, limit)
        chosen = policy()
        attempts = chosen.attempts if given is None else 1
        route = f"{request.method} {urlsplit(request.url).path}"
        for attempt in range(1, attempts + 1):
            if _ABANDONED.is_set():
                raise Abandoned(f"facetopt stopped waiting for Braintrust ({route} not sent)")
            last = attempt == attempts
            try:
                response = super().send(request, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last or _ABANDONED.is_set():
                    raise
                delay = chosen.delay(attempt, None)
                log.debug("retrying %s in %.2fs after %s (attempt %d)", route, delay, exc, attempt)
                _ABANDONED.wait(delay)
                continue
            if response.status_code in chosen.statuses and not last:
                delay = chosen.delay(attempt, parse_retry_after(response.headers.get("Retry-After")))
                log.debug(
                    "retrying %s in %.2fs after HTTP %d (attempt %d)",
                    route,
                    delay,
                    response.status_code,
                    attempt,
                )
                _drain(response)
                _ABANDONED.wait(delay)
                continue
            return response
        raise AssertionError("unreachable")


def _drain(response: requests.Response) -> None:
    """Read the refused answer to its end before closing, so the server is not cut off mid-reply."""
    try:
        _ = response.content
    except requests.RequestException:
        pass
    response.close()


def _capped(given: Any, limit: float) -> Any:
    if isinstance(given, tuple):
        return tuple(limit if part is None else min(float(part), limit) for part in given)
    return min(float(given), limit)


def install() -> None:
    """Route every braintrust SDK request of this process through the BoundedAdapter (once), and
    start afresh: requests are sent again after an earlier `abandon()` (a new login, a new command)."""
    global _INSTALLED
    import braintrust
    import braintrust.logger

    with _LOCK:
        _ABANDONED.clear()
        if _INSTALLED is None:
            _INSTALLED = BoundedAdapter()
        if getattr(braintrust.logger, "_http_adapter", None) is not _INSTALLED:
            braintrust.set_http_adapter(_INSTALLED)


def abandon() -> None:
    """Stop sending anything to Braintrust from this process."""
    _ABANDONED.set()


def abandoned() -> bool:
    return _ABANDONED.is_set()
