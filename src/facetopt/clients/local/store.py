"""The local store: one DuckDB file under the output root.

It holds local datasets (keyed by target project and dataset name), the label
cache, local experiments with their rows, the experiment registry and prompt
history. DuckDB allows one writing process, so callers open it briefly and close
it before starting an eval subprocess.

`LocalStore` is the connection (`store_connection`: schema, lock waits, unusable files) with the
registry's tables (`store_experiments`) and, here, the datasets, the label and call caches and the
prompt history; `BatchWriter` commits labels and model outputs in short transactions as they arrive.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from facetopt.clients.local.store_connection import (
    HELD,
    StoreBusyError,
    StoreConnection,
    StoreUnusableError,
    insert_columns,
    insert_many,
    utc_now,
)
from facetopt.clients.local.store_experiments import ExperimentTables
from facetopt.clients.local.store_ledger import BACKFILL, LedgerEntry, LedgerTables
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import FacetoptError

# the store's errors are raised by the connection; callers catch them under this module's name
__all__ = [
    "BatchWriter",
    "LedgerEntry",
    "LocalStore",
    "StoreBusyError",
    "StoreHold",
    "StoreUnusableError",
    "dump_json",
    "write_calls",
    "write_labels",
]


class LocalStore(StoreConnection, ExperimentTables, LedgerTables):
    """Open it for one short transaction (`with LocalStore(path) as store: ...`), never for a run:
    DuckDB lets one process write at a time, and other commands wait while it is open."""

    def _migrate(self) -> None:
        self.conn.execute(BACKFILL)  # local rows written before the ledger existed enter it

    # datasets -------------------------------------------------------------
    def upsert_rows(self, project: str, dataset: str, rows: Iterable[DatasetRow]) -> int:
        now = utc_now()
        values = [(project, dataset, r.id, r.facet_name, r.split, r.model_dump_json(), now) for r in rows]
        if not values:
            return 0
        insert_columns(self.conn, "INSERT OR REPLACE INTO dataset_rows", values)
        return len(values)

    def read_rows(self, project: str, dataset: str) -> list[DatasetRow]:
        found = self.conn.execute(
            "SELECT row FROM dataset_rows WHERE project = ? AND dataset = ? ORDER BY id", [project, dataset]
        ).fetchall()
        return [DatasetRow.model_validate_json(r[0]) for r in found]

    def row_labels(self, project: str, dataset: str) -> dict[str, str | None]:
        """id -> expected of every row of the dataset (what an upload is verified against)."""
        found = self.conn.execute(
            "SELECT id, json_extract_string(row, '$.expected') FROM dataset_rows"
            " WHERE project = ? AND dataset = ?",
            [project, dataset],
        ).fetchall()
        return dict(found)

    def list_datasets(self) -> list[tuple[str, str, int]]:
        return self.conn.execute(
            "SELECT project, dataset, count(*) FROM dataset_rows GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()

    # label cache ----------------------------------------------------------
    def cached_labels(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        self.conn.execute("CREATE OR REPLACE TEMP TABLE wanted_keys (key VARCHAR)")
        insert_columns(self.conn, "INSERT INTO wanted_keys", [(k,) for k in keys])
        found = self.conn.execute(
            "SELECT c.key, c.text FROM label_cache c SEMI JOIN wanted_keys w ON c.key = w.key"
        ).fetchall()
        return dict(found)

    def put_label(self, key: str, text: str, model: str, endpoint: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO label_cache VALUES (?, ?, ?, ?, ?)",
            [key, text, model, endpoint, utc_now()],
        )

    # call cache (eval model outputs and judge verdicts) ---------------------------------------
    def cached_calls(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        self.conn.execute("CREATE OR REPLACE TEMP TABLE wanted_calls (key VARCHAR)")
        insert_many(self.conn, "INSERT INTO wanted_calls", [(k,) for k in keys])
        found = self.conn.execute(
            "SELECT c.key, c.value FROM call_cache c SEMI JOIN wanted_calls w ON c.key = w.key"
        ).fetchall()
        return {key: json.loads(value) for key, value in found}

    # prompt history -------------------------------------------------------
    def remember_prompt(self, sha: str, facet_name: str, text: str) -> None:
        self.conn.execute(
            "INSERT INTO prompt_history VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [sha, facet_name, text, utc_now()],
        )

    def prompt_text(self, sha: str) -> str | None:
        found = self.conn.execute("SELECT text FROM prompt_history WHERE sha = ?", [sha]).fetchone()
        return found[0] if found else None

    def record_publication(
        self,
        sha: str,
        facet_name: str,
        backend: str,
        project: str,
        slug: str,
        function_id: str | None,
        experiment_ids: list[str],
    ) -> None:
        self.conn.execute(
            "INSERT INTO prompt_publications VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [sha, facet_name, backend, project, slug, function_id, json.dumps(experiment_ids), utc_now()],
        )

    def publications(self, sha: str | None = None) -> list[dict[str, Any]]:
        """Publications newest first (of one prompt hash, when given)."""
        where, params = ("WHERE sha = ?", [sha]) if sha else ("", [])
        found = self.conn.execute(
            "SELECT sha, facet_name, backend, project, slug, function_id, experiment_ids, published"
            f" FROM prompt_publications {where} ORDER BY published DESC",
            params,
        ).fetchall()
        columns = (
            "sha",
            "facet_name",
            "backend",
            "project",
            "slug",
            "function_id",
            "experiment_ids",
            "published",
        )
        rows = [dict(zip(columns, row, strict=True)) for row in found]
        for row in rows:
            row["experiment_ids"] = json.loads(row["experiment_ids"] or "[]")
            row["published"] = row["published"].isoformat()
        return rows


HOLD_WAIT = 2.0  # seconds a hold waits for another process before going without


class StoreHold:
    """Keeps the store open in this process from `start()` until its `with` block ends, so the short
    sessions of a command's last steps (the last labels, the rows, the ledger) open it in a tenth of
    a millisecond instead of tens of milliseconds, and it is checkpointed once. Other processes wait
    for the store meanwhile, so a command starts the hold only for its last steps. A store that
    cannot be held now is no error: each session then opens it itself, as without a hold."""

    def __init__(self, path: Path, active: bool = True):
        self.path = Path(path)
        self._store: LocalStore | None = None
        self._tried = not active

    def start(self) -> None:
        if self._tried:
            return
        self._tried = True
        try:
            self._store = LocalStore(self.path, wait=HOLD_WAIT)
        except FacetoptError:
            return
        HELD.add(self.path.absolute())

    def __enter__(self) -> StoreHold:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._store is not None:
            HELD.discard(self.path.absolute())
            self._store.close()
            self._store = None


class BatchWriter:
    """Commits items from a background thread in short transactions: it opens the store, writes
    what has arrived, and closes it again, so other commands (and the eval runner) can use the
    store in between. Items arrive while the calls run; at most every `interval` seconds a batch."""

    def __init__(self, path: Path, write: Any, interval: float = 0.5):
        self._path, self._write, self._interval = Path(path), write, interval
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self.error: BaseException | None = None
        self.written = 0
        self._thread.start()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def _run(self) -> None:
        stop = False
        items: list[Any] = []
        while not stop:
            if not items:
                items.append(self._queue.get())
            self._closing.wait(self._interval)  # let a batch gather: one short transaction per interval
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            stop = stop or any(item is None for item in items)
            items = [item for item in items if item is not None]
            if not items or self.error is not None:
                items = []
                continue
            try:
                with LocalStore(self._path, wait=60.0 if stop else 2.0) as store:
                    self._write(store, items)
                self.written += len(items)
                items = []
            except StoreBusyError as exc:  # held by another command: keep the items, try again
                if stop:
                    self.error = exc
            except Exception as exc:  # surfaced by the caller; the run folder keeps the items too
                self.error = exc

    def close(self) -> None:
        self._queue.put(None)
        self._closing.set()
        self._thread.join()


def write_labels(store: LocalStore, items: list[tuple[str, str, str, str]]) -> None:
    rows = [(k, t, m, e, utc_now()) for (k, t, m, e) in items]
    insert_columns(store.conn, "INSERT OR REPLACE INTO label_cache", rows)


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def write_calls(store: LocalStore, items: list[tuple[str, str, Any, str, str]]) -> None:
    """(key, kind, value, model, endpoint) into the call cache; the newest value of a key wins."""
    latest = {
        key: (key, kind, dump_json(value), model, endpoint, utc_now())
        for key, kind, value, model, endpoint in items
    }
    insert_many(store.conn, "INSERT OR REPLACE INTO call_cache", list(latest.values()))
