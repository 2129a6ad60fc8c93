"""Facet functions on Braintrust: register the project, insert functions, read them back.

The requests are the original publish script's: `POST {app_url}/api/project/register` with
`{"project_name"}`, then `POST {api_url}/insert-functions` with `{"functions": [...]}`; a function
reads back with `GET {api_url}/v1/function?project_id=&slug=`.
"""

from __future__ import annotations

from typing import Any

from facetopt.clients.braintrust.api import (
    RETRYABLE_STATUSES,
    BraintrustConnection,
    api_error,
    request_json,
    server_message,
)
from facetopt.clients.braintrust.replies import InsertedFunctions, ObjectList, RegisteredProject, checked
from facetopt.errors import BraintrustError, FacetoptError


def register_project(conn: BraintrustConnection, project_name: str) -> str:
    """The id of the project of that name in the connection's org, created when missing."""
    reply = request_json(
        conn,
        "POST",
        "/api/project/register",
        json={"project_name": project_name, "org_id": conn.org_id},
        app=True,
        what=f"registering project {project_name!r}",
    )
    route = "POST /api/project/register"
    return checked(RegisteredProject, reply, route, f"registering project {project_name!r}").project.id


def functions_with_slug(conn: BraintrustConnection, project_id: str, slug: str) -> list[dict[str, Any]]:
    reply = request_json(
        conn,
        "GET",
        "/v1/function",
        params={"project_id": project_id, "slug": slug},
        what=f"reading function {slug!r}",
    )
    objects = checked(ObjectList, reply, "GET /v1/function", f"reading function {slug!r}").objects
    return [o for o in objects if o.get("slug") == slug]


def insert_functions(conn: BraintrustConnection, definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send the definitions in one request; the reply's `functions` (id and slug of each)."""

    def refused(exc: Any, attempts: int) -> FacetoptError:
        if exc.status_code in RETRYABLE_STATUSES or exc.status_code in (401, 403):
            return api_error(exc, conn, "publishing facet functions", attempts=attempts)
        detail = server_message(getattr(exc, "response_body", None))
        return BraintrustError(
            f"Braintrust refused the facet functions (HTTP {exc.status_code}): {detail}",
            hint="check --if-exists (error refuses a slug that exists) and the project's permissions",
        )

    reply = request_json(
        conn,
        "POST",
        "/insert-functions",
        json={"functions": definitions},
        what="publishing facet functions",
        on_error=refused,
    )
    return checked(InsertedFunctions, reply, "POST /insert-functions", "publishing facet functions").functions
