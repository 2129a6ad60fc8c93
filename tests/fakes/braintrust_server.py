"""A loopback fake of the Braintrust API, faithful to shared/reference/braintrust-api.md.

Routes: login, /version, projects, datasets (+ fetch), experiments (+ fetch, summarize),
`/logs3` (upserts with `_is_merge` / `_object_delete`, and the SDK's overflow upload), and
`/btql`, which runs the SQL it receives over the stored rows (see braintrust_btql.py) and
rejects what strict lint rejects. Every request is recorded; faults can be injected per route.

    with FakeBraintrust() as fake:
        project = fake.create_project("source")
        fake.add_spans(project["id"], [...])
        connect(SecretStr(fake.api_key), app_url=fake.url)
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.braintrust_btql import BtqlError, execute, lint_strict, parse_query
from tests.fakes.http_base import JsonHandler, LoopbackServer

DEFAULT_API_KEY = "sk-fake-braintrust-0123456789"
DEFAULT_ORG = "fake-org"
_NAMESPACE = uuid.UUID("6f1d8b5e-2c7a-4f00-9a53-0c1f8e7d2b11")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw: bytes


FREEZE = -1  # Fault.status: accept the request and never answer (until the fake is released)
DIE = -2  # Fault.status: close the connection without an answer


@dataclass
class Fault:
    path: str | re.Pattern
    status: int  # an HTTP status, FREEZE or DIE
    remaining: int | None  # None: forever
    method: str | None = None
    retry_after: str | None = None
    message: str = "injected failure"
    reshape: Callable[[Any], Any] | None = None  # answer normally, then replace the reply with this of it

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if isinstance(self.path, str):
            return self.path == path
        return self.path.fullmatch(path) is not None


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_created(value: Any) -> str:
    """Timestamps come back the way the service writes them: UTC, ISO 8601, `Z`."""
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise HttpError(400, f"invalid created timestamp {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _deep_merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _set_path(row: dict, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        row = row.setdefault(part, {})
    row[path[-1]] = copy.deepcopy(value)


@dataclass
class _Store:
    projects: dict[str, dict] = field(default_factory=dict)
    logs: dict[str, dict[str, dict]] = field(default_factory=dict)  # project id -> row id -> row
    datasets: dict[str, dict] = field(default_factory=dict)
    dataset_rows: dict[str, dict[str, dict]] = field(default_factory=dict)
    # superseded versions of dataset rows: /fetch repeats them on later pages, as the real one may
    dataset_history: dict[str, list[dict]] = field(default_factory=dict)
    experiments: dict[str, dict] = field(default_factory=dict)
    experiment_rows: dict[str, dict[str, dict]] = field(default_factory=dict)
    overflow: dict[str, bytes] = field(default_factory=dict)
    functions: dict[str, dict] = field(default_factory=dict)  # function id -> function


class FakeBraintrust:
    """The fake service. `keys` maps each API key to the org names it can see."""

    def __init__(
        self,
        keys: dict[str, list[str]] | None = None,
        *,
        proxy_url: str | None = None,
        strict_lint: bool = True,
        logs3_payload_max_bytes: int | None = None,
    ):
        self.keys = {k: list(v) for k, v in (keys or {DEFAULT_API_KEY: [DEFAULT_ORG]}).items()}
        self.org_ids = {
            org: str(uuid.uuid5(_NAMESPACE, "org:" + org)) for orgs in self.keys.values() for org in orgs
        }
        self.org_api_urls: dict[str, str] = {}  # per-org api_url in the login reply (default: the fake)
        self.proxy_url = proxy_url
        self.strict_lint = strict_lint
        self.logs3_payload_max_bytes = logs3_payload_max_bytes
        self._lock = threading.RLock()
        self._store = _Store()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._xact = 1_000_192_000_000
        self._seq = 0
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        self._thaw = threading.Event()  # set on exit: frozen requests end (without an answer)
        self.freeze_limit_s = 30.0  # a frozen request is held at most this long

    # ---- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> FakeBraintrust:
        self._server = LoopbackServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-braintrust",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._thaw.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "use FakeBraintrust as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_key(self) -> str:
        return next(iter(self.keys))

    # ---- fixtures and inspection -----------------------------------------------------
    def create_project(self, name: str, org: str | None = None) -> dict:
        org = org or next(iter(self.org_ids))
        with self._lock:
            for project in self._store.projects.values():
                if project["name"] == name and project["org_name"] == org:
                    return dict(project)
            project = {
                "id": str(uuid.uuid4()), "name": name, "org_id": self.org_ids[org], "org_name": org,
                "created": now_iso(), "description": None, "user_id": "fake-user",
            }  # fmt: skip
            self._store.projects[project["id"]] = project
            self._store.logs[project["id"]] = {}
            return dict(project)

    def add_spans(self, project_id: str, spans: list[dict]) -> list[dict]:
        """Store project_logs rows; ids, span ids and created are filled in when absent."""
        with self._lock:
            table = self._store.logs[project_id]
            xact = self._next_xact()
            stored = []
            for span in spans:
                row = copy.deepcopy(span)
                row.setdefault("id", str(uuid.uuid4()))
                row.setdefault("span_id", row["id"])
                row.setdefault("root_span_id", row["span_id"])
                row["created"] = normalize_created(row.get("created") or now_iso())
                row.update(project_id=project_id, log_id="g", _xact_id=xact, _pagination_key=self._next_key())
                table[row["id"]] = row
                stored.append(row)
            return copy.deepcopy(stored)

    def create_dataset(self, project_id: str, name: str) -> dict:
        with self._lock:
            return dict(self._dataset_create_or_get(project_id, name, {}))

    def find_dataset(self, project_id: str, name: str) -> dict | None:
        with self._lock:
            for ds in self._store.datasets.values():
                if ds["project_id"] == project_id and ds["name"] == name:
                    return dict(ds)
        return None

    def dataset_rows(self, dataset_id: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._store.dataset_rows[dataset_id].values()))

    def create_experiment(self, project_id: str, name: str, **fields: Any) -> dict:
        with self._lock:
            return dict(self._experiment_create(project_id, {"name": name, "ensure_new": True, **fields}))

    def add_experiment_spans(self, experiment_id: str, spans: list[dict]) -> None:
        rows = [dict(span, experiment_id=experiment_id) for span in spans]
        with self._lock:
            self._apply_rows(rows, self._all_orgs())

    def experiment_rows(self, experiment_id: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._store.experiment_rows[experiment_id].values()))

    def functions(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._store.functions.values()))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # ---- fault injection -------------------------------------------------------------
    def fail(
        self,
        path: str | re.Pattern,
        status: int = 500,
        times: int | None = 1,
        *,
        method: str | None = None,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests (None: all of them) with `status`."""
        fault = Fault(
            path,
            status,
            times,
            method,
            None if retry_after is None else f"{retry_after:g}",
            message or f"injected HTTP {status}",
        )
        with self._lock:
            self._faults.append(fault)

    def fail_logs3(self, times: int | None = 1, status: int = 500) -> None:
        self.fail("/logs3", status, times, method="POST")

    def rate_limit(self, path: str | re.Pattern, times: int | None = 1, retry_after: float = 0) -> None:
        self.fail(path, 429, times, retry_after=retry_after, message="rate limited")

    def freeze(self, path: str | re.Pattern, times: int | None = None, *, method: str | None = None) -> None:
        """Accept the next `times` matching requests and never answer them (the connection is
        dropped, unanswered, after `freeze_limit_s` or when the fake stops)."""
        with self._lock:
            self._faults.append(Fault(path, FREEZE, times, method))

    def die(self, path: str | re.Pattern, times: int | None = 1, *, method: str | None = None) -> None:
        """Close the connection of the next `times` matching requests without answering."""
        with self._lock:
            self._faults.append(Fault(path, DIE, times, method))

    def reshape(
        self,
        path: str | re.Pattern,
        transform: Callable[[Any], Any],
        times: int | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests as usual, but send `transform(reply)` instead."""
        with self._lock:
            self._faults.append(Fault(path, 200, times, method, reshape=transform))

    def wait_frozen(self) -> None:
        self._thaw.wait(self.freeze_limit_s)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ---- request handling ------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, dict(headers), body, raw))
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                if fault.reshape is None:
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    return fault.status, {"error": fault.message}, extra
        try:
            from tests.fakes.braintrust_routes import route

            status, payload, extra = route(self, method, path, query, headers, raw, body)
        except HttpError as exc:
            return exc.status, {"error": exc.message}, {}
        if fault is not None and fault.reshape is not None and status < 400:
            payload = fault.reshape(payload)
        return status, payload, extra

    # ---- store helpers used by the routes (call with the lock held) ------------------
    def _all_orgs(self) -> list[str]:
        return list(self.org_ids)

    def _next_xact(self) -> str:
        self._xact += 1
        return str(self._xact)

    def _next_key(self) -> str:
        self._seq += 1
        return f"p{self._seq:020d}"

    def _visible_project(self, project_id: str, orgs: list[str]) -> dict:
        project = self._store.projects.get(project_id)
        if project is None or project["org_name"] not in orgs:
            raise HttpError(404, f"project {project_id} not found")
        return project

    def _dataset_create_or_get(self, project_id: str, name: str, extra: dict) -> dict:
        existing = next(
            (d for d in self._store.datasets.values() if d["project_id"] == project_id and d["name"] == name),
            None,
        )
        if existing is not None:
            return existing
        dataset = {
            "id": str(uuid.uuid4()), "name": name, "project_id": project_id, "created": now_iso(),
            "description": extra.get("description"), "metadata": extra.get("metadata"),
            "user_id": "fake-user",
        }  # fmt: skip
        self._store.datasets[dataset["id"]] = dataset
        self._store.dataset_rows[dataset["id"]] = {}
        return dataset

    def _experiment_create(self, project_id: str, body: dict) -> dict:
        taken = {e["name"] for e in self._store.experiments.values() if e["project_id"] == project_id}
        name = body.get("name") or f"experiment-{len(taken) + 1}"
        if name in taken and not body.get("ensure_new", True):
            return next(
                e
                for e in self._store.experiments.values()
                if e["project_id"] == project_id and e["name"] == name
            )
        base, n = name, 1
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        experiment = {
            "id": str(uuid.uuid4()), "name": name, "project_id": project_id, "created": now_iso(),
            "description": body.get("description"), "metadata": body.get("metadata"),
            "tags": body.get("tags"), "dataset_id": body.get("dataset_id"),
            "dataset_version": body.get("dataset_version"),
            "base_exp_id": body.get("base_exp_id"), "public": bool(body.get("public", False)),
            "repo_info": body.get("repo_info"), "user_id": "fake-user",
            "org_name": self._store.projects[project_id]["org_name"],
        }  # fmt: skip
        self._store.experiments[experiment["id"]] = experiment
        self._store.experiment_rows[experiment["id"]] = {}
        return experiment

    def _apply_rows(self, rows: list[Any], orgs: list[str]) -> None:
        """Validate every row, then upsert them all (a request applies entirely or not at all)."""
        targets = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise HttpError(400, f"row {i}: every row needs a string id")
            if "experiment_id" in row:
                obj = self._store.experiments.get(row["experiment_id"])
                table = self._store.experiment_rows.get(row["experiment_id"])
                project_id = obj["project_id"] if obj else None
            elif "dataset_id" in row:
                obj = self._store.datasets.get(row["dataset_id"])
                table = self._store.dataset_rows.get(row["dataset_id"])
                project_id = obj["project_id"] if obj else None
            elif "project_id" in row:
                obj = self._store.projects.get(row["project_id"])
                table = self._store.logs.get(row["project_id"])
                project_id = row["project_id"]
            else:
                raise HttpError(400, f"row {i}: no experiment_id, dataset_id or project_id")
            if table is None or project_id is None:
                raise HttpError(400, f"row {i}: the object it names does not exist")
            self._visible_project(project_id, orgs)
            if row.get("created") is not None:
                normalize_created(row["created"])
            history = (
                self._store.dataset_history.setdefault(row["dataset_id"], []) if "dataset_id" in row else None
            )
            targets.append((table, row, project_id, history))
        xact = self._next_xact()
        for table, row, project_id, history in targets:
            self._upsert(table, row, xact, project_id, history)

    def _upsert(
        self, table: dict[str, dict], row: dict, xact: str, project_id: str, history: list[dict] | None = None
    ) -> None:
        control = {k: v for k, v in row.items() if k.startswith("_")}
        data = {k: copy.deepcopy(v) for k, v in row.items() if not k.startswith("_")}
        existing = table.get(data["id"])
        if history is not None and existing is not None:
            # the old version, paged after every current row ("s" sorts after "p")
            history.append(dict(copy.deepcopy(existing), _pagination_key="s" + existing["_pagination_key"]))
        if control.get("_object_delete"):
            table.pop(data["id"], None)
            return
        if control.get("_is_merge") and existing is not None:
            replaced = {tuple(p) for p in control.get("_merge_paths") or []}
            merged = _deep_merge({k: v for k, v in existing.items() if not k.startswith("_")}, data)
            for path in replaced:
                _set_path(merged, list(path), _path_value(data, list(path)))
        else:
            merged = data
            if existing is not None and merged.get("created") is None:
                merged["created"] = existing.get("created")
        merged["created"] = normalize_created(merged.get("created") or now_iso())
        merged.setdefault("span_id", merged["id"])
        merged.setdefault("root_span_id", merged["span_id"])
        merged.setdefault("project_id", project_id)
        merged["_xact_id"] = xact
        merged["_pagination_key"] = self._next_key()
        table[merged["id"]] = merged

    def stale_dataset_rows(self, dataset_id: str) -> list[dict]:
        """Superseded versions of the dataset's rows, which reads see again after the current ones."""
        return list(self._store.dataset_history.get(dataset_id, []))

    def _rows_for(self, object_type: str, object_id: str, orgs: list[str]) -> list[dict]:
        if object_type == "project_logs":
            self._visible_project(object_id, orgs)
            table = self._store.logs[object_id]
        elif object_type == "dataset":
            ds = self._store.datasets.get(object_id)
            if ds is None:
                raise HttpError(404, f"dataset {object_id} not found")
            self._visible_project(ds["project_id"], orgs)
            table = self._store.dataset_rows[object_id]
        else:
            exp = self._store.experiments.get(object_id)
            if exp is None:
                raise HttpError(404, f"experiment {object_id} not found")
            self._visible_project(exp["project_id"], orgs)
            table = self._store.experiment_rows[object_id]
        return list(table.values())

    def run_btql(self, sql: str, orgs: list[str]) -> tuple[list[dict], str | None]:
        try:
            parsed = parse_query(sql)
            if self.strict_lint:
                lint_strict(parsed)
            with self._lock:
                rows = self._rows_for(parsed.object_type, parsed.object_id, orgs)
            return execute(parsed, rows)
        except BtqlError as exc:
            raise HttpError(exc.status, exc.message) from None


def _path_value(row: dict, path: list[str]) -> Any:
    for part in path:
        row = row.get(part) if isinstance(row, dict) else None
    return row


def encode_key_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_key_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, f"invalid cursor {cursor!r}") from None


class _Handler(JsonHandler):
    def _serve(self, method: str) -> None:
        fake: FakeBraintrust = self.server.fake  # type: ignore[attr-defined]
        headers = {k: v for k, v in self.headers.items()}
        status, payload, extra = fake.handle(method, self.path, headers, self.read_body())
        if status in (FREEZE, DIE):
            if status == FREEZE:
                fake.wait_frozen()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_json(status, payload, extra)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")
