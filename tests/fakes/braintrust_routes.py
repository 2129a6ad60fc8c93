"""The routes of the fake Braintrust API (see braintrust_server.FakeBraintrust.handle)."""

from __future__ import annotations

import json
import re
import statistics
import uuid
from typing import TYPE_CHECKING, Any

from tests.fakes import braintrust_functions as functions
from tests.fakes.braintrust_server import HttpError, _deep_merge, decode_key_cursor, encode_key_cursor

if TYPE_CHECKING:
    from tests.fakes.braintrust_server import FakeBraintrust

Reply = tuple[int, Any, dict[str, str]]
DATASET_EVENT_FIELDS = (
    "id", "span_id", "root_span_id", "input", "expected", "metadata", "tags",
    "created", "_xact_id", "_pagination_key", "dataset_id", "project_id",
)  # fmt: skip


def _ok(payload: Any, **headers: str) -> Reply:
    return 200, payload, headers


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _orgs_for(fake: FakeBraintrust, headers: dict[str, str]) -> list[str]:
    auth = _header(headers, "Authorization") or ""
    key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
    if key is None or key not in fake.keys:
        raise HttpError(401, "Invalid API key")
    return fake.keys[key]


def _param(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _object_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise HttpError(400, "request body must be a JSON object")
    return body


def _required_str(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"'{name}' is required and must be a non-empty string")
    return value


def route(
    fake: FakeBraintrust, method: str, path: str, query: dict, headers: dict, raw: bytes, body: Any
) -> Reply:
    if (method, path) == ("POST", "/api/apikey/login"):
        return _login(fake, headers)
    if (method, path) == ("GET", "/version"):
        info: dict[str, Any] = {"version": "fake-braintrust"}
        if fake.logs3_payload_max_bytes:
            info["logs3_payload_max_bytes"] = fake.logs3_payload_max_bytes
        return _ok(info)
    upload = re.fullmatch(r"/overflow-upload/([\w-]+)", path)
    if upload and method == "PUT":
        with fake._lock:
            fake._store.overflow[upload.group(1)] = raw
        return _ok({})
    orgs = _orgs_for(fake, headers)
    if (method, path) == ("POST", "/btql"):
        return _btql(fake, orgs, _object_body(body))  # SQL runs outside the store lock
    with fake._lock:
        return _authenticated(fake, orgs, method, path, query, body)


def _login(fake: FakeBraintrust, headers: dict[str, str]) -> Reply:
    orgs = _orgs_for(fake, headers)
    org_info = [
        {
            "id": fake.org_ids[org],
            "name": org,
            "api_url": fake.org_api_urls.get(org, fake.url),
            "proxy_url": fake.proxy_url or fake.url,
            "git_metadata": None,
        }
        for org in orgs
    ]
    return _ok({"org_info": org_info})


def _authenticated(
    fake: FakeBraintrust, orgs: list[str], method: str, path: str, query: dict, body: Any
) -> Reply:
    store = fake._store
    if (method, path) == ("POST", "/api/project/register"):
        return _ok(functions.register_project(fake, orgs, body))
    if (method, path) == ("POST", "/insert-functions"):
        return _ok(functions.insert_functions(fake, orgs, body))
    if (method, path) == ("GET", "/v1/function"):
        return _ok(functions.list_functions(fake, orgs, query))
    if (method, path) == ("GET", "/ping"):
        return _ok({"id": "fake-user", "email": "user@example.com"})
    if (method, path) == ("POST", "/api/base_experiment/get_id"):
        raise HttpError(400, "no base experiment")
    if (method, path) == ("POST", "/logs3"):
        return _logs3(fake, orgs, body)
    if (method, path) == ("POST", "/logs3/overflow"):
        key = str(uuid.uuid4())
        signed = f"{fake.url}/overflow-upload/{key}"
        return _ok(
            {
                "method": "PUT",
                "signedUrl": signed,
                "headers": {"Content-Type": "application/json"},
                "key": key,
            }
        )
    if path == "/v1/project":
        return _projects(fake, orgs, method, query, body)
    if match := re.fullmatch(r"/v1/project/([^/]+)", path):
        return _ok(dict(fake._visible_project(match.group(1), orgs)))
    if path == "/v1/dataset":
        if method == "POST":
            body = _object_body(body)
            project_id = _required_str(body, "project_id")
            fake._visible_project(project_id, orgs)
            return _ok(dict(fake._dataset_create_or_get(project_id, _required_str(body, "name"), body)))
        found = [d for d in store.datasets.values() if _listed(fake, orgs, d, query, "dataset_name")]
        return _ok({"objects": [dict(d) for d in reversed(found)]})
    if match := re.fullmatch(r"/v1/dataset/([^/]+)(/fetch|/summarize)?", path):
        dataset = store.datasets.get(match.group(1))
        if dataset is None:
            raise HttpError(404, f"dataset {match.group(1)} not found")
        fake._visible_project(dataset["project_id"], orgs)
        rows = list(store.dataset_rows[dataset["id"]].values())
        if match.group(2) == "/fetch":
            stale = fake.stale_dataset_rows(dataset["id"])  # later pages repeat older versions
            body = body if method == "POST" else _query_body(query)
            return _fetch([*rows, *stale], body, DATASET_EVENT_FIELDS)
        if match.group(2) == "/summarize":
            return _ok(_dataset_summary(fake, dataset, rows))
        return _ok(dict(dataset))
    if path == "/v1/experiment":
        if method == "POST":
            body = _object_body(body)
            project_id = _required_str(body, "project_id")
            fake._visible_project(project_id, orgs)
            return _ok(dict(fake._experiment_create(project_id, body)))
        found = [e for e in store.experiments.values() if _listed(fake, orgs, e, query, "experiment_name")]
        return _ok({"objects": _list_page(list(reversed(found)), query)})
    if match := re.fullmatch(r"/v1/experiment/([^/]+)(/fetch|/summarize)?", path):
        experiment = store.experiments.get(match.group(1))
        if experiment is None:
            raise HttpError(404, f"experiment {match.group(1)} not found")
        fake._visible_project(experiment["project_id"], orgs)
        rows = list(store.experiment_rows[experiment["id"]].values())
        if match.group(2) == "/fetch":
            return _fetch(rows, body if method == "POST" else _query_body(query), None)
        if match.group(2) == "/summarize":
            return _ok(_experiment_summary(fake, experiment, rows))
        if method == "PATCH" and match.group(2) is None:
            # Braintrust deep-merges object fields (metadata) of a partial update
            update = {k: v for k, v in _object_body(body).items() if k in ("name", "description", "metadata")}
            experiment.update(_deep_merge(experiment, update))
        return _ok(dict(experiment))
    raise HttpError(404, f"no route for {method} {path}")


def _list_page(objects: list[dict], query: dict) -> list[dict]:
    """A page of a `GET /v1/<object>` listing as the real API gives it: newest first (by `created`),
    at most `limit` objects, after the id `starting_after` or before the id `ending_before`
    (never both)."""
    after, before, limit = (_param(query, k) for k in ("starting_after", "ending_before", "limit"))
    if after is not None and before is not None:
        raise HttpError(400, "you may only pass one of starting_after and ending_before")
    ordered = sorted(objects, key=lambda o: str(o.get("created") or ""), reverse=True)
    ids = [o["id"] for o in ordered]
    if after is not None:
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    if before is not None:
        ordered = ordered[: ids.index(before)] if before in ids else []
    if limit is not None:
        try:
            size = int(limit)
        except ValueError:
            raise HttpError(400, f"invalid limit {limit!r}") from None
        if size < 0:
            raise HttpError(400, f"invalid limit {limit!r}")
        ordered = ordered[-size:] if before is not None else ordered[:size]
    return [dict(o) for o in ordered]


def _listed(fake: FakeBraintrust, orgs: list[str], obj: dict, query: dict, name_param: str) -> bool:
    project = fake._store.projects[obj["project_id"]]
    if project["org_name"] not in orgs:
        return False
    checks = {
        "project_id": project["id"],
        "project_name": project["name"],
        "org_name": project["org_name"],
        name_param: obj["name"],
    }
    return all(_param(query, k) in (None, v) for k, v in checks.items())


def _projects(fake: FakeBraintrust, orgs: list[str], method: str, query: dict, body: Any) -> Reply:
    if method == "POST":
        body = _object_body(body)
        name = _required_str(body, "name")
        org = body.get("org_name")
        if org is None and len(orgs) > 1:
            raise HttpError(400, "org_name is required: this API key belongs to several organizations")
        org = org or orgs[0]
        if org not in orgs:
            raise HttpError(403, f"no access to organization {org}")
        return _ok(fake.create_project(name, org))
    org = _param(query, "org_name")
    if org is not None and org not in orgs:
        raise HttpError(403, f"no access to organization {org}")
    found = [
        dict(p)
        for p in fake._store.projects.values()
        if p["org_name"] in orgs
        and _param(query, "org_name") in (None, p["org_name"])
        and _param(query, "project_name") in (None, p["name"])
    ]
    found.sort(key=lambda p: p["id"])
    after = _param(query, "starting_after")
    if after is not None:
        found = [p for p in found if p["id"] > after]
    limit = _param(query, "limit")
    return _ok({"objects": found[: int(limit)] if limit else found})


def _query_body(query: dict) -> dict:
    out: dict[str, Any] = {}
    for name in ("limit", "cursor", "version"):
        if _param(query, name) is not None:
            out[name] = int(_param(query, name)) if name == "limit" else _param(query, name)
    return out


def _fetch(rows: list[dict], body: Any, fields: tuple[str, ...] | None) -> Reply:
    body = _object_body(body if body is not None else {})
    limit = body.get("limit", 1000)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise HttpError(400, "'limit' must be a positive integer")
    rows = sorted(rows, key=lambda r: r["_pagination_key"])
    if body.get("version") is not None:
        rows = [r for r in rows if int(r["_xact_id"]) <= int(body["version"])]
    if body.get("cursor"):
        last = decode_key_cursor(body["cursor"])
        rows = [r for r in rows if r["_pagination_key"] > last]
    page = rows[:limit]
    events = []
    for row in page:
        event = {k: row.get(k) for k in fields} if fields else dict(row)
        event.setdefault("expected", None)
        events.append(event)
    cursor = encode_key_cursor(page[-1]["_pagination_key"]) if len(rows) > limit else None
    return _ok({"events": events, "cursor": cursor})


def _logs3(fake: FakeBraintrust, orgs: list[str], body: Any) -> Reply:
    body = _object_body(body)
    if body.get("api_version") != 2:
        raise HttpError(400, "api_version must be 2")
    rows = body.get("rows")
    if isinstance(rows, dict) and rows.get("type") == "logs3_overflow":
        uploaded = fake._store.overflow.pop(str(rows.get("key")), None)
        if uploaded is None:
            raise HttpError(400, f"no overflow upload with key {rows.get('key')!r}")
        rows = json.loads(uploaded).get("rows")
    if not isinstance(rows, list):
        raise HttpError(400, "'rows' must be a list")
    fake._apply_rows(rows, orgs)
    return _ok({})


def _btql(fake: FakeBraintrust, orgs: list[str], body: dict) -> Reply:
    if body.get("fmt", "json") != "json":
        raise HttpError(400, f"this fake only answers fmt 'json', not {body.get('fmt')!r}")
    query = body.get("query")
    if isinstance(query, dict):
        data, cursor = _structured(fake, orgs, query)
    elif isinstance(query, str):
        data, cursor = fake.run_btql(query, orgs)
    else:
        raise HttpError(400, "'query' must be SQL text")
    schema = {
        "type": "array",
        "items": {"type": "object", "properties": {k: {} for k in (data[0] if data else {})}},
    }
    headers = {"x-bt-cursor": cursor} if cursor else {}
    return 200, {"data": data, "schema": schema, "cursor": cursor}, headers


def _structured(fake: FakeBraintrust, orgs: list[str], query: dict) -> tuple[list[dict], str | None]:
    """The SDK's ObjectFetcher shape: select * from one object, paged by cursor."""
    unsupported = set(query) - {"select", "from", "cursor", "limit"}
    if unsupported:
        raise HttpError(
            400, f"this fake does not support structured query keys: {', '.join(sorted(unsupported))}"
        )
    source = query.get("from") or {}
    name = (source.get("name") or {}).get("name") or [None]
    args = source.get("args") or [{}]
    if query.get("select") != [{"op": "star"}] or name[0] not in ("project_logs", "experiment", "dataset"):
        raise HttpError(400, "structured queries must select * from project_logs, experiment or dataset")
    with fake._lock:
        rows = fake._rows_for(name[0], str(args[0].get("value")), orgs)
    _, payload, _ = _fetch(rows, {"limit": query.get("limit") or 1000, "cursor": query.get("cursor")}, None)
    return payload["events"], payload["cursor"]


def _scores(rows: list[dict]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for row in rows:
        for name, value in (row.get("scores") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(name, []).append(float(value))
    return {name: statistics.fmean(v) for name, v in values.items()}


def _experiment_summary(fake: FakeBraintrust, experiment: dict, rows: list[dict]) -> dict:
    project = fake._store.projects[experiment["project_id"]]
    project_url = f"{fake.url}/app/{project['org_name']}/p/{project['name']}"
    return {
        "project_name": project["name"],
        "experiment_name": experiment["name"],
        "project_url": project_url,
        "experiment_url": f"{project_url}/experiments/{experiment['name']}",
        "comparison_experiment_name": None,
        "scores": {
            name: {"name": name, "score": score, "diff": None, "improvements": 0, "regressions": 0}
            for name, score in _scores(rows).items()
        },
        "metrics": {},
    }


def _dataset_summary(fake: FakeBraintrust, dataset: dict, rows: list[dict]) -> dict:
    project = fake._store.projects[dataset["project_id"]]
    project_url = f"{fake.url}/app/{project['org_name']}/p/{project['name']}"
    return {
        "project_name": project["name"],
        "dataset_name": dataset["name"],
        "project_url": project_url,
        "dataset_url": f"{project_url}/datasets/{dataset['name']}",
        "data_summary": {"total_records": len(rows)},
    }
