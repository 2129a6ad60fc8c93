"""The fake's publishing routes: project registration and facet functions.

`POST /api/project/register` (app URL) registers a project by name; `POST /insert-functions`
creates or replaces functions by (project, slug) with the request's `if_exists`; `GET /v1/function`
lists them newest first, filtered by `project_id`, `slug` and `function_name`. A function that
already exists under `if_exists: "error"` is refused with HTTP 400 and nothing of the batch is
written (the batch is checked before any row is stored).
"""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any

from tests.fakes.braintrust_server import HttpError, now_iso

if TYPE_CHECKING:
    from tests.fakes.braintrust_server import FakeBraintrust

IF_EXISTS = ("error", "replace", "ignore")
REQUIRED = ("project_id", "name", "slug", "function_data")


def register_project(fake: FakeBraintrust, orgs: list[str], body: Any) -> dict:
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("project_name"), str)
        or not body["project_name"]
    ):
        raise HttpError(400, "project_name is required")
    by_id = {fake.org_ids[o]: o for o in orgs}
    org = by_id.get(body.get("org_id"), body.get("org_id")) if body.get("org_id") else orgs[0]
    if org not in orgs:
        raise HttpError(403, f"no access to organization {org}")
    project = fake.create_project(body["project_name"], org)
    return {"project": project}


def insert_functions(fake: FakeBraintrust, orgs: list[str], body: Any) -> dict:
    functions = body.get("functions") if isinstance(body, dict) else None
    if not isinstance(functions, list) or not functions:
        raise HttpError(400, "functions must be a non-empty list")
    table = _table(fake)
    for fn in functions:
        _validate(fake, orgs, fn)
        existing = _find(table, fn["project_id"], fn["slug"])
        if existing is not None and fn.get("if_exists", "error") == "error":
            raise HttpError(
                400, f"Function with slug '{fn['slug']}' already exists in project {fn['project_id']}"
            )
    written = []
    for fn in functions:
        existing = _find(table, fn["project_id"], fn["slug"])
        if existing is not None and fn.get("if_exists", "error") == "ignore":
            written.append({"id": existing["id"], "slug": existing["slug"], "found_existing": True})
            continue
        stored = {
            "id": existing["id"] if existing else str(uuid.uuid4()),
            "project_id": fn["project_id"],
            "org_id": fake._visible_project(fn["project_id"], orgs)["org_id"],
            "log_id": "p",
            "name": fn["name"],
            "slug": fn["slug"],
            "description": fn.get("description"),
            "function_type": fn.get("function_type"),
            "function_data": copy.deepcopy(fn["function_data"]),
            "prompt_data": copy.deepcopy(fn.get("prompt_data")),
            "metadata": copy.deepcopy(fn.get("metadata")),
            "tags": copy.deepcopy(fn.get("tags")),
            "created": existing["created"] if existing else now_iso(),
            "_xact_id": fake._next_xact(),
        }
        table[stored["id"]] = stored
        written.append({"id": stored["id"], "slug": stored["slug"], "found_existing": existing is not None})
    return {"functions": written}


def list_functions(fake: FakeBraintrust, orgs: list[str], query: dict[str, list[str]]) -> dict:
    def param(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    visible = []
    for fn in _table(fake).values():
        project = fake._store.projects.get(fn["project_id"])
        if project is None or project["org_name"] not in orgs:
            continue
        if param("project_id") and fn["project_id"] != param("project_id"):
            continue
        if param("slug") and fn["slug"] != param("slug"):
            continue
        if param("function_name") and fn["name"] != param("function_name"):
            continue
        visible.append(copy.deepcopy(fn))
    visible.sort(key=lambda fn: fn["created"], reverse=True)
    limit = param("limit")
    return {"objects": visible[: int(limit)] if limit else visible}


def _table(fake: FakeBraintrust) -> dict[str, dict]:
    return fake._store.functions


def _find(table: dict[str, dict], project_id: str, slug: str) -> dict | None:
    return next((f for f in table.values() if f["project_id"] == project_id and f["slug"] == slug), None)


def _validate(fake: FakeBraintrust, orgs: list[str], fn: Any) -> None:
    if not isinstance(fn, dict):
        raise HttpError(400, "each function must be an object")
    for name in REQUIRED:
        if fn.get(name) in (None, ""):
            raise HttpError(400, f"function is missing '{name}'")
    if fn.get("if_exists", "error") not in IF_EXISTS:
        raise HttpError(400, f"if_exists must be one of {', '.join(IF_EXISTS)}")
    data = fn["function_data"]
    if not isinstance(data, dict) or not data.get("type"):
        raise HttpError(400, "function_data.type is required")
    fake._visible_project(fn["project_id"], orgs)
