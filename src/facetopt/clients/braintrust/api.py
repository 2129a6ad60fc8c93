"""Braintrust connections: one SDK login per org, error translation, and SQL sent to `/btql`.

Every failure becomes a FacetoptError with a hint; the API key never appears in a message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import SecretStr

from facetopt.clients.braintrust.api_errors import (
    KEY_HINT,
    _login_error,
    _scrub,
    _times,
    api_error,
    server_message,
    transport_error,
)
from facetopt.clients.braintrust.connection import BraintrustConnection
from facetopt.clients.braintrust.retry import RETRYABLE_STATUSES, with_retries
from facetopt.errors import BraintrustError, ConfigError, FacetoptError, NotFoundError

DEFAULT_APP_URL = "https://www.braintrust.dev"
# /btql and the REST calls the SDK does not retry itself go through clients/braintrust/retry.py

log = logging.getLogger("facetopt.braintrust")
_ENV_LOCK = threading.Lock()
T = TypeVar("T")


class _SdkLogStream(io.TextIOBase):
    """Where the SDK's background logger prints its retry chatter: our debug log, not stderr."""

    def write(self, text: str) -> int:
        if text.strip():
            log.debug("braintrust sdk: %s", text.rstrip())
        return len(text)


@contextlib.contextmanager
def _api_url_env(api_url: str | None) -> Iterator[None]:
    """The SDK reads an api_url override only from BRAINTRUST_API_URL, at login time."""
    if not api_url:
        yield
        return
    with _ENV_LOCK:
        previous = os.environ.get("BRAINTRUST_API_URL")
        os.environ["BRAINTRUST_API_URL"] = api_url
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("BRAINTRUST_API_URL", None)
            else:
                os.environ["BRAINTRUST_API_URL"] = previous


def connect(
    api_key: SecretStr | str | None,
    app_url: str | None = None,
    org_name: str | None = None,
    api_url_override: str | None = None,
) -> BraintrustConnection:
    """Log in with a fresh SDK state (never the SDK's global one) and pick the org."""
    import braintrust

    secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else (api_key or "")
    if not secret.strip():
        raise ConfigError(
            "no Braintrust API key is set", hint="set BRAINTRUST_API_KEY (or use --backend local)"
        )
    app_url = (app_url or os.environ.get("BRAINTRUST_APP_URL") or DEFAULT_APP_URL).rstrip("/")
    from facetopt.clients.braintrust.http import install

    install()  # before the login, so every connection of the state uses it
    state = braintrust.BraintrustState()
    from facetopt.clients.braintrust.waiting import waiting

    try:
        with (
            _api_url_env(api_url_override),
            waiting(lambda s: f"still logging in to Braintrust at {app_url} ({s:.0f}s)"),
        ):
            state.login(app_url=app_url, api_key=secret, org_name=org_name or None, force_login=True)
    except Exception as exc:
        raise _login_error(exc, app_url, org_name, secret) from None
    _make_flushes_synchronous(state)
    if not (state.org_name and state.org_id and state.api_url):
        raise BraintrustError(
            f"Braintrust login at {app_url} named no organisation or API URL", hint=KEY_HINT
        )
    return BraintrustConnection(
        state=state,
        org_name=state.org_name,
        org_id=state.org_id,
        api_url=state.api_url,
        proxy_url=state.proxy_url,
        app_url=app_url,
    )


def _make_flushes_synchronous(state: Any) -> None:
    """Like BRAINTRUST_SYNC_FLUSH=1, for this state only: a failed write raises from flush()
    instead of being dropped with a printed warning, and the SDK's messages go to our log."""
    logger = state.global_bg_logger()
    if hasattr(logger, "sync_flush"):
        logger.sync_flush = True
    if hasattr(logger, "outfile"):
        logger.outfile = _SdkLogStream()
    if hasattr(logger, "num_tries"):
        logger.num_tries = 1  # http.BoundedAdapter retries each write; the SDK would retry it again


def unretried_failure(exc: BaseException) -> tuple[int | None, float | None] | None:
    """(status, Retry-After) of a retryable failure the SDK made only one attempt at, else None."""
    from braintrust.api import BraintrustHTTPError, BraintrustTransportError

    if isinstance(exc, BraintrustHTTPError):
        if exc.status_code in RETRYABLE_STATUSES and exc.attempts <= 1:
            return exc.status_code, exc.retry_after
    elif isinstance(exc, BraintrustTransportError) and exc.attempts <= 1:
        return None, None
    return None


def call(conn: BraintrustConnection, what: str, fn: Callable[[Any], T], missing: str | None = None) -> T:
    """Run `fn(api_client)` (the SDK's REST client), retrying 408/429/5xx the SDK did not retry
    itself (e.g. `POST /v1/experiment`), and translate failures; with `missing`, a 404 becomes a
    NotFoundError with that message. The user hears about it when the wait grows long."""
    from braintrust.api import BraintrustHTTPError

    from facetopt.clients.braintrust.waiting import waiting

    sent = [0]

    def attempt() -> T:
        try:
            return fn(conn.state.api_client())
        except Exception as exc:
            sent[0] += max(1, int(getattr(exc, "attempts", 1) or 1))
            raise

    try:
        with waiting(lambda s: f"still waiting for Braintrust while {what} ({s:.0f}s)"):
            return with_retries(attempt, unretried_failure, what=what)
    except BraintrustHTTPError as exc:
        if missing and exc.status_code == 404:
            raise NotFoundError(
                missing, hint="check the id, and that the API key's organization owns it"
            ) from None
        raise api_error(exc, conn, what, attempts=sent[0]) from None
    except Exception as exc:
        raise api_error(exc, conn, what, attempts=sent[0]) from None


def btql(conn: BraintrustConnection, sql: str, hint: str | None = None) -> dict:
    """POST the SQL to `/btql` through the SDK's logged-in transport; retry 408/429/5xx and dropped
    connections honouring Retry-After. A rejected query (4xx) raises BraintrustError carrying the
    server's message and `hint`; a reply without a `data` list is a BraintrustError too."""
    from facetopt.clients.braintrust.replies import BtqlPage, checked

    reply = request_json(
        conn,
        "POST",
        "/btql",
        json={"query": sql, "fmt": "json"},
        what="running a SQL query",
        on_error=lambda exc, attempts: _btql_error(exc, conn, attempts, hint),
    )
    checked(BtqlPage, reply, "POST /btql", "a SQL query")
    return reply


def request_json(
    conn: BraintrustConnection,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
    app: bool = False,
    what: str,
    on_error: Callable[[Any, int], FacetoptError] | None = None,
) -> Any:
    """One REST call on the API (or, with `app`, the app) URL through the SDK's logged-in
    transport, retried on 408/429/5xx and connection failures honouring Retry-After (retry.py),
    each attempt with a timeout and all of them within the call's deadline; any other failure
    becomes a FacetoptError (`on_error(exc, attempts)` may word an HTTP error)."""
    import time

    from braintrust.api import BraintrustHTTPError, BraintrustTransportError, RequestTarget, RetryMode
    from braintrust.api import RetryPolicy as SdkPolicy

    from facetopt.clients.braintrust.retry import call_deadline, request_timeout
    from facetopt.clients.braintrust.waiting import waiting

    client = conn.state.api_client()
    url = client.router.resolve(RequestTarget.APP if app else RequestTarget.API, path)
    headers = {"Authorization": f"Bearer {client.api_key}"}
    attempts = 0
    ends = time.monotonic() + call_deadline()

    def send() -> Any:
        nonlocal attempts
        attempts += 1
        timeout = max(0.1, min(request_timeout(), ends - time.monotonic()))
        one_try = SdkPolicy(max_attempts=1, max_elapsed_time=None, timeout=timeout)
        response = client.transport.request(
            method,
            url,
            json=json,
            params=params,
            headers=headers,
            retry_mode=RetryMode.NONE,
            retry_policy=one_try,
        )
        return response.json()

    def classify(exc: BaseException) -> tuple[int | None, float | None] | None:
        if isinstance(exc, BraintrustHTTPError):
            return exc.status_code, exc.retry_after
        return (None, None) if isinstance(exc, BraintrustTransportError) else None

    route = f"{method} {path}"
    try:
        with waiting(lambda s: f"still waiting for Braintrust ({route}, attempt {attempts}, {s:.0f}s)"):
            return with_retries(send, classify, what=route, deadline_s=call_deadline())
    except BraintrustHTTPError as exc:
        if on_error is not None:
            raise on_error(exc, attempts) from None
        raise api_error(exc, conn, what, attempts=attempts) from None
    except BraintrustTransportError as exc:
        raise transport_error(exc, conn, what, attempts) from None
    except ValueError:
        raise BraintrustError(
            f"Braintrust's reply to {route} ({what}) is not JSON", hint="run the command again later"
        ) from None


def _btql_error(exc: Any, conn: BraintrustConnection, attempts: int, hint: str | None) -> FacetoptError:
    status = exc.status_code
    if status in RETRYABLE_STATUSES:
        return BraintrustError(
            f"Braintrust kept failing on a SQL query: it answered HTTP {status} {_times(attempts)}",
            hint="Braintrust may be overloaded or rate limiting this key; run the command again later",
        )
    if status in (401, 403):
        return BraintrustError(f"Braintrust refused the SQL query (HTTP {status})", hint=KEY_HINT)
    detail = _scrub(server_message(exc.response_body), conn._secret())
    return BraintrustError(
        f"Braintrust rejected the SQL query (HTTP {status}): {detail}",
        hint=hint or "check the SQL against Braintrust's dialect (see docs/backends.md)",
    )
