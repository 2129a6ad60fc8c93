"""Translating Braintrust failures (HTTP errors, no answer, a login refused) into FacetoptErrors
that say what happened; the API key never appears in a message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from facetopt.clients.braintrust.retry import RETRYABLE_STATUSES
from facetopt.errors import BraintrustError, FacetoptError, NotFoundError

if TYPE_CHECKING:
    from facetopt.clients.braintrust.connection import BraintrustConnection

KEY_HINT = "check BRAINTRUST_API_KEY: it must be a valid key of the organization you read from or write to"


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        from braintrust.util import mask_api_key

        text = text.replace(secret, "***").replace(mask_api_key(secret), "***")
    return text


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _login_error(exc: BaseException, app_url: str, org_name: str | None, secret: str) -> FacetoptError:
    from braintrust.api import BraintrustHTTPError, BraintrustTransportError

    for link in _exception_chain(exc):
        if isinstance(link, BraintrustHTTPError):
            if link.status_code in (401, 403):
                return BraintrustError(f"Braintrust rejected the API key ({link.status_code})", hint=KEY_HINT)
            return BraintrustError(
                f"Braintrust login at {app_url} failed with HTTP {link.status_code}",
                hint="Braintrust may be down, or BRAINTRUST_APP_URL points at the wrong server",
            )
        if isinstance(link, BraintrustTransportError):
            return BraintrustError(
                f"cannot reach Braintrust at {app_url}",
                hint="check BRAINTRUST_APP_URL and your network connection",
            )
        if isinstance(link, TimeoutError):
            return BraintrustError(f"Braintrust login at {app_url} timed out", hint="try again later")
    message = _scrub(str(exc), secret)
    unknown_org = re.match(r"Organization (.*) not found\. Must be one of (.*)$", message)
    if unknown_org:
        return NotFoundError(
            f"Braintrust organization {org_name or unknown_org.group(1)!r} is not available to this API key; "
            f"it can see: {unknown_org.group(2)}",
            hint="pass one of those names with --source-org / --target-org (or BRAINTRUST_ORG_NAME)",
        )
    if isinstance(exc, KeyError | TypeError) or "response" in message or "must include" in message:
        from facetopt.clients.braintrust.replies import REPLY_HINT

        return BraintrustError(
            f"Braintrust's reply to POST /api/apikey/login (login at {app_url}) cannot be used: {message}",
            hint=REPLY_HINT,
        )
    return BraintrustError(f"Braintrust login at {app_url} failed: {message}", hint=KEY_HINT)


def api_error(
    exc: BaseException, conn: BraintrustConnection, what: str, attempts: int | None = None
) -> FacetoptError:
    """Translate an SDK or HTTP failure of `what` (e.g. "reading project X") into a FacetoptError;
    `attempts` is the true number of requests sent when facetopt retried on top of the SDK."""
    from braintrust.api import BraintrustHTTPError, BraintrustTransportError

    if isinstance(exc, FacetoptError):
        return exc
    secret = conn._secret()
    for link in _exception_chain(exc):
        if isinstance(link, BraintrustHTTPError):
            status = link.status_code
            tries = attempts or link.attempts
            if status in (401, 403):
                return BraintrustError(f"Braintrust refused {what} (HTTP {status})", hint=KEY_HINT)
            if status in RETRYABLE_STATUSES:
                return BraintrustError(
                    f"Braintrust kept failing while {what}: it answered HTTP {status} {_times(tries)}",
                    hint="Braintrust may be overloaded or down; run the command again later",
                )
            detail = _scrub(server_message(link.response_body), secret)
            return BraintrustError(f"Braintrust rejected {what} (HTTP {status}): {detail}")
        if isinstance(link, BraintrustTransportError):
            return transport_error(link, conn, what, attempts or link.attempts)
    return BraintrustError(f"Braintrust failed while {what}: {_scrub(str(exc), secret)}")


def _times(attempts: int) -> str:
    return "once" if attempts <= 1 else f"on all {attempts} attempts"


def _failure_kind(exc: BaseException) -> str:
    """What happened to a request that got no answer: timed out, refused, or the connection dropped."""
    import requests

    from facetopt.clients.braintrust.http import Abandoned

    chain = list(_exception_chain(exc))
    text = " ".join(str(link) for link in chain)
    if any(isinstance(link, Abandoned) for link in chain):
        return "facetopt stopped waiting for an answer"
    if any(isinstance(link, requests.Timeout | TimeoutError) for link in chain) or "timed out" in text:
        from facetopt.clients.braintrust.retry import request_timeout

        return f"timed out (no answer within {request_timeout():g}s)"
    if any(isinstance(link, ConnectionRefusedError) for link in chain) or "refused" in text.lower():
        return "refused the connection"
    return "closed the connection without answering"


def transport_error(
    exc: BaseException, conn: BraintrustConnection, what: str, attempts: int
) -> FacetoptError:
    kind = _failure_kind(exc)
    tries = "" if attempts <= 1 else f" ({attempts} attempts)"
    if kind == "refused the connection":
        return BraintrustError(
            f"the Braintrust API at {conn.api_url} refused the connection while {what}{tries}",
            hint="check BRAINTRUST_API_URL and your network connection",
        )
    return BraintrustError(
        f"the Braintrust API at {conn.api_url} was reachable but {kind} while {what}{tries}",
        hint="Braintrust is slow or down; run the command again later "
        "(FACETOPT_BT_TIMEOUT / FACETOPT_BT_DEADLINE allow longer waits)",
    )


def server_message(body: str | None) -> str:
    """The human part of an error body: `{"error": "..."}`, `{"error": {"message": ...}}` or text."""
    import json

    text = (body or "").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:2000]
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message", payload))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:2000]
    return text[:2000]
