"""The HTTP adapter the eval runner installs into the braintrust SDK (`braintrust.set_http_adapter`).

Imported only inside the runner process. It gives every SDK request (login, project, experiment
creation, which the SDK never retries, log writes, summary) the same retry rule as facetopt's own
REST calls (retry.py: 408/429/5xx and dropped connections, Retry-After honoured), a per-request
timeout, and records what reached Braintrust in the activity file (activity.py) so facetopt can
report a created experiment and how many rows it holds, whatever stops the runner.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from facetopt.clients.braintrust.activity import ActivityWriter
from facetopt.clients.braintrust.retry import RetryPolicy, parse_retry_after, policy

DEFAULT_TIMEOUT_S = 60.0


class RecordingAdapter(HTTPAdapter):
    def __init__(
        self,
        writer: ActivityWriter | None,
        retry_policy: RetryPolicy | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ):
        super().__init__(pool_maxsize=32)
        self.writer = writer
        self.retry_policy = retry_policy or policy()
        self.timeout_s = timeout_s
        self._experiment_id: str | None = None
        self._traces: set[str] = set()

    def send(self, request: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        chosen = self.retry_policy
        route = urlsplit(request.url).path
        for attempt in range(1, chosen.attempts + 1):
            last = attempt == chosen.attempts
            try:
                response = super().send(request, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    self._refused(request.method, route, None, type(exc).__name__)
                    raise
                time.sleep(chosen.delay(attempt, None))
                continue
            if response.status_code in chosen.statuses and not last:
                delay = chosen.delay(attempt, parse_retry_after(response.headers.get("Retry-After")))
                response.close()
                time.sleep(delay)
                continue
            self._observe(request, route, response)
            return response
        raise AssertionError("unreachable")

    # -- what reached Braintrust -------------------------------------------------------------------
    def _refused(self, method: str, route: str, status: int | None, message: str) -> None:
        if self.writer is not None:
            self.writer.write(
                {"event": "refused", "method": method, "route": route, "status": status, "message": message}
            )

    def _observe(self, request: Any, route: str, response: requests.Response) -> None:
        if self.writer is None:
            return
        if response.status_code >= 400:
            self._refused(request.method, route, response.status_code, _message(response))
            return
        if request.method == "POST" and route.endswith("/v1/experiment"):
            try:
                created = response.json()
            except ValueError:
                return
            self._experiment_id = str(created.get("id"))
            self._traces.clear()
            self.writer.write(
                {
                    "event": "experiment",
                    "id": created.get("id"),
                    "name": created.get("name"),
                    "project_id": created.get("project_id"),
                }
            )
        elif request.method == "POST" and route.endswith("/logs3") and self._experiment_id:
            before = len(self._traces)
            self._traces.update(_traces_in(request.body, self._experiment_id))
            if len(self._traces) != before:
                self.writer.write(
                    {"event": "logged", "experiment_id": self._experiment_id, "rows": len(self._traces)}
                )


def _message(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return (response.text or "").strip()[:300]
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message", payload))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:300]
    return str(payload)[:300]


def _traces_in(body: Any, experiment_id: str) -> set[str]:
    """Root span ids (one per eval case) whose root span reached `experiment_id` with its output in
    this `/logs3` body. Child spans (task, scorers, the judge's LLM call) carry the case's
    root_span_id too, and a root span starts without output: neither makes a row Braintrust holds."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return set()
    rows = payload.get("rows") if isinstance(payload, dict) else None
    return {
        str(row["root_span_id"])
        for row in rows or []
        if isinstance(row, dict)
        and row.get("experiment_id") == experiment_id
        and row.get("root_span_id")
        and not row.get("span_parents")
        and "output" in row
    }


def install(writer: ActivityWriter | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> RecordingAdapter:
    """Route every braintrust SDK request of this process through a RecordingAdapter."""
    import braintrust

    adapter = RecordingAdapter(writer, timeout_s=timeout_s)
    braintrust.set_http_adapter(adapter)
    return adapter
