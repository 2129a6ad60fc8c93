"""Finding Braintrust projects, datasets and experiments by name or id.

An id passes through (confirmed with a GET); a name is looked up; an unknown name fails
with the closest names offered.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facetopt.clients.braintrust.api import api_error, call
from facetopt.clients.braintrust.connection import BraintrustConnection
from facetopt.clients.braintrust.replies import Named, NamedList, checked
from facetopt.errors import NotFoundError

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class Project:
    id: str
    name: str


def _closest(name: str, candidates: list[str]) -> list[str]:
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.5)
    return [lowered[f] for f in found]


def not_found(kind: str, name: str, where: str, candidates: list[str]) -> NotFoundError:
    close = _closest(name, candidates)
    if close:
        hint = "did you mean: " + ", ".join(repr(c) for c in close) + "?"
    elif candidates:
        hint = f"{len(candidates)} {kind}s exist there; pass an exact name or an id"
    else:
        hint = f"no {kind}s exist there yet"
    return NotFoundError(f"Braintrust {kind} {name!r} not found in {where}", hint=hint)


def _list_projects(client: Any, org_name: str) -> list[dict]:
    projects: list[dict] = []
    after = None
    for _ in range(100):  # at most 100 pages of 1000
        reply = client.projects.get_project(org_name=org_name, limit=1000, starting_after=after)
        page = [
            p.model_dump() for p in checked(NamedList, reply, "GET /v1/project", "listing projects").objects
        ]
        projects.extend(page)
        if len(page) < 1000:
            break
        after = page[-1]["id"]
    return projects


def _named(reply: Any, route: str, what: str) -> list[dict]:
    return [p.model_dump() for p in checked(NamedList, reply, route, what).objects]


def resolve_project(conn: BraintrustConnection, name_or_id: str, create: bool = False) -> Project:
    """An id passes through (confirmed with a GET); a name is looked up, or created when `create`."""
    from braintrust.api import BraintrustHTTPError

    where = f"organization {conn.org_name!r}"
    if UUID_RE.match(name_or_id):
        try:
            found = conn.state.api_client().projects.get_project_id(name_or_id)
            project = checked(Named, found, f"GET /v1/project/{name_or_id}", "reading the project")
            return Project(project.id, project.name)
        except BraintrustHTTPError as exc:
            if exc.status_code not in (400, 404):
                raise api_error(exc, conn, f"reading project {name_or_id}") from None
        except Exception as exc:
            raise api_error(exc, conn, f"reading project {name_or_id}") from None
    found = call(
        conn,
        f"looking up project {name_or_id!r}",
        lambda c: _named(
            c.projects.get_project(project_name=name_or_id, org_name=conn.org_name),
            "GET /v1/project",
            "looking up a project",
        ),
    )
    exact = [p for p in found if p.get("name") == name_or_id]
    if exact:
        return Project(exact[0]["id"], exact[0]["name"])
    if create:
        made = call(
            conn,
            f"creating project {name_or_id!r}",
            lambda c: c.projects.post_project(body={"name": name_or_id, "org_name": conn.org_name}),
        )
        project = checked(Named, made, "POST /v1/project", "creating the project")
        return Project(project.id, project.name or name_or_id)
    names = [p["name"] for p in call(conn, "listing projects", lambda c: _list_projects(c, conn.org_name))]
    raise not_found("project", name_or_id, where, names)


def _confirmed_id(conn: BraintrustConnection, kind: str, object_id: str, read: Callable[[Any], dict]) -> str:
    """The id, once `read(api_client)` has found it (a 404 is a NotFoundError)."""
    found = call(
        conn, f"reading {kind} {object_id}", read, missing=f"Braintrust {kind} {object_id} not found"
    )
    return checked(Named, found, f"GET /v1/{kind}/{object_id}", f"reading the {kind}").id


def resolve_dataset_id(conn: BraintrustConnection, project_id: str, name_or_id: str) -> str:
    if UUID_RE.match(name_or_id):
        return _confirmed_id(conn, "dataset", name_or_id, lambda c: c.datasets.get_dataset_id(name_or_id))
    found = call(
        conn,
        f"looking up dataset {name_or_id!r}",
        lambda c: _named(
            c.datasets.get_dataset(project_id=project_id, dataset_name=name_or_id),
            "GET /v1/dataset",
            "looking up a dataset",
        ),
    )
    exact = [d for d in found if d.get("name") == name_or_id]
    if exact:
        return exact[0]["id"]
    names = [
        d["name"]
        for d in call(
            conn,
            "listing datasets",
            lambda c: _named(
                c.datasets.get_dataset(project_id=project_id), "GET /v1/dataset", "listing datasets"
            ),
        )
    ]
    raise not_found("dataset", name_or_id, f"project {project_id}", names)


EXPERIMENT_PAGE = 100


def list_experiments(
    conn: BraintrustConnection, project_id: str, limit: int | None = None, page_size: int | None = None
) -> list[dict]:
    """The project's experiments, newest first, read page by page (`GET /v1/experiment` returns the
    newest first; the next page starts after the last id of the previous one) until `limit` or the end."""
    page_size = page_size or EXPERIMENT_PAGE
    found: list[dict] = []
    after: str | None = None
    while limit is None or len(found) < limit:
        size = page_size if limit is None else max(1, min(page_size, limit - len(found)))

        def read_page(client: Any, size: int = size, after: str | None = after) -> list[dict]:
            reply = client.experiments.get_experiment(project_id=project_id, limit=size, starting_after=after)
            return _named(reply, "GET /v1/experiment", "listing experiments")

        page = call(conn, "listing experiments", read_page)
        found.extend(page)
        if len(page) < size or not isinstance(page[-1].get("id"), str) or page[-1]["id"] == after:
            break
        after = page[-1]["id"]
    # the server's order already is newest first; a stable sort keeps it when `created` ties
    return sorted(found, key=lambda e: str(e.get("created") or ""), reverse=True)


def get_experiment(conn: BraintrustConnection, experiment_id: str) -> dict:
    """One experiment by id (NotFoundError when there is none)."""
    found = call(
        conn,
        f"reading experiment {experiment_id}",
        lambda c: c.experiments.get_experiment_id(experiment_id),
        missing=f"Braintrust experiment {experiment_id} not found",
    )
    checked(Named, found, f"GET /v1/experiment/{experiment_id}", "reading the experiment")
    return found


def resolve_experiment_id(conn: BraintrustConnection, project_id: str, name_or_id: str) -> str:
    """An id passes through (confirmed); a name matches the newest experiment of that name."""
    if UUID_RE.match(name_or_id):
        return _confirmed_id(
            conn, "experiment", name_or_id, lambda c: c.experiments.get_experiment_id(name_or_id)
        )
    experiments = list_experiments(conn, project_id)
    named = [e for e in experiments if e.get("name") == name_or_id]
    if named:
        return named[0]["id"]
    raise not_found("experiment", name_or_id, f"project {project_id}", [e["name"] for e in experiments])
