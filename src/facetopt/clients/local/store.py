"""The local store: one DuckDB file under the output root.

It holds local datasets (keyed by target project and dataset name), the label
cache, local experiments with their rows, the experiment registry and prompt
history. DuckDB allows one writing process, so callers open it briefly and close
it before starting an eval subprocess.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facetopt.domain.dataset import DatasetRow
from facetopt.domain.experiments import ComparisonRecord, EvalRow, ExperimentRecord
from facetopt.errors import FacetoptError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_rows (
    project VARCHAR, dataset VARCHAR, id VARCHAR, facet_name VARCHAR, split VARCHAR,
    row JSON, updated TIMESTAMPTZ, PRIMARY KEY (project, dataset, id));
CREATE TABLE IF NOT EXISTS label_cache (
    key VARCHAR PRIMARY KEY, text VARCHAR, model VARCHAR, endpoint VARCHAR, created TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS prompt_history (
    sha VARCHAR PRIMARY KEY, facet_name VARCHAR, text VARCHAR, first_seen TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS prompt_publications (
    sha VARCHAR, facet_name VARCHAR, backend VARCHAR, project VARCHAR, slug VARCHAR,
    function_id VARCHAR, experiment_ids JSON, published TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id VARCHAR PRIMARY KEY, name VARCHAR, created VARCHAR, backend VARCHAR,
    dataset VARCHAR, dataset_project VARCHAR, split VARCHAR, model VARCHAR, record JSON);
CREATE TABLE IF NOT EXISTS store_meta (version INTEGER, schema_sha VARCHAR);
CREATE TABLE IF NOT EXISTS call_cache (
    key VARCHAR PRIMARY KEY, kind VARCHAR, value JSON, model VARCHAR, endpoint VARCHAR,
    created TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS experiment_rows (
    experiment_id VARCHAR, id VARCHAR, facet_name VARCHAR, split VARCHAR, row JSON,
    PRIMARY KEY (experiment_id, id));
CREATE TABLE IF NOT EXISTS comparisons (
    comparison_id VARCHAR PRIMARY KEY, created VARCHAR, baseline_id VARCHAR, candidate_id VARCHAR,
    dataset VARCHAR, split VARCHAR, target VARCHAR, record JSON);
CREATE TABLE IF NOT EXISTS comparison_decisions (
    comparison_id VARCHAR, facet_name VARCHAR, verdict VARCHAR, candidate_sha VARCHAR,
    baseline_sha VARCHAR, created VARCHAR, PRIMARY KEY (comparison_id, facet_name));
"""


def insert_many(conn: Any, statement: str, rows: list[tuple], chunk: int = 500) -> None:
    """`<statement> VALUES (...), (...)` in chunks: DuckDB's executemany runs one statement per row."""
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        placeholders = ", ".join("(" + ", ".join("?" * len(part[0])) + ")" for _ in part)
        conn.execute(f"{statement} VALUES {placeholders}", [value for row in part for value in row])


def _now() -> datetime:
    return datetime.now(UTC)


_SCHEMA_SHA = hashlib.sha256(_SCHEMA.encode()).hexdigest()[:16]
SCHEMA_VERSION = 2  # facetopt's own layout of the tables above; a newer store is refused
OPEN_WAIT = 10.0  # seconds to retry while another process holds the store


class StoreBusyError(FacetoptError):
    pass


class StoreUnusableError(FacetoptError):
    pass


def _holder(message: str) -> str:
    """'PID 123 (/usr/bin/python3)' from DuckDB's lock-conflict message, when it names one."""
    found = re.search(r"held in (.+?) \(PID (\d+)\)", message)
    return f"PID {found.group(2)} ({found.group(1)})" if found else "another process"


def _unusable(path: Path, message: str) -> FacetoptError | None:
    """The error for a store that no retry can fix, or None when the failure is a lock conflict."""
    hint = "pass another --output-root, or move the file aside (labels and experiments live in it)"
    if path.is_dir():
        return StoreUnusableError(f"the local store {path} is a directory, not a DuckDB file", hint=hint)
    lowered = message.lower()
    if "permission denied" in lowered:
        return StoreUnusableError(
            f"the local store {path} cannot be opened: permission denied",
            hint="check the file's owner and permissions (facetopt needs to read and write it)",
        )
    if "version" in lowered and ("database file" in lowered or "storage" in lowered):
        return StoreUnusableError(
            f"the local store {path} was written by another DuckDB version: {message.splitlines()[0][:200]}",
            hint="use the facetopt (and duckdb) version that wrote it, or " + hint,
        )
    if "not a valid duckdb database" in lowered or "corrupt" in lowered or "checksum" in lowered:
        return StoreUnusableError(
            f"the local store {path} is not a valid DuckDB database (corrupt or another kind of file)",
            hint=hint,
        )
    if "could not set lock" in lowered or "conflicting lock" in lowered:
        return None
    return StoreUnusableError(f"the local store {path} cannot be opened: {message[:200]}", hint=hint)


def connect(path: Path, read_only: bool, wait: float) -> Any:
    """A DuckDB connection; retries while another process holds the file, up to `wait` seconds."""
    import duckdb

    deadline, pause = time.monotonic() + wait, 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            message = str(exc)
            unusable = _unusable(path, message)
            if unusable is not None:
                raise unusable from None
            if time.monotonic() + pause > deadline:
                raise StoreBusyError(
                    f"the local store {path} is held by {_holder(message)} (waited {wait:.0f}s)",
                    hint="another facetopt command is writing to it; retry when it is done",
                ) from None
            time.sleep(pause)
            pause = min(0.25, pause * 1.5)


class LocalStore:
    """Open it for one short transaction (`with LocalStore(path) as store: ...`), never for a run:
    DuckDB lets one process write at a time, and other commands wait while it is open."""

    def __init__(self, path: Path, read_only: bool = False, wait: float = OPEN_WAIT):
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise FacetoptError(
                f"no local store at {self.path}",
                hint="run `facetopt dataset create` first, or pass the right --output-root",
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path, read_only, wait)
        try:
            version, schema_sha = self._version()
            if version is not None and version > SCHEMA_VERSION:
                raise StoreUnusableError(
                    f"the local store {self.path} comes from a newer facetopt (store version {version}, "
                    f"this facetopt reads up to {SCHEMA_VERSION})",
                    hint="upgrade facetopt, or pass another --output-root",
                )
            # the CREATE statements run only when the tables changed since the store last saw them
            if not read_only and (version != SCHEMA_VERSION or schema_sha != _SCHEMA_SHA):
                self.conn.execute(_SCHEMA)
                self.conn.execute("DELETE FROM store_meta")
                self.conn.execute("INSERT INTO store_meta VALUES (?, ?)", [SCHEMA_VERSION, _SCHEMA_SHA])
        except FacetoptError:
            self.conn.close()
            raise
        except Exception as exc:  # a DuckDB file that is not facetopt's, or damaged
            self.conn.close()
            raise _unusable(self.path, str(exc)) or StoreUnusableError(str(exc)[:200]) from None

    def _version(self) -> tuple[int | None, str | None]:
        """(layout version, fingerprint of the CREATE statements) the store records; Nones for a
        new (or older) store."""
        import duckdb

        try:
            found = self.conn.execute("SELECT max(version), max(schema_sha) FROM store_meta").fetchone()
        except (duckdb.CatalogException, duckdb.BinderException):
            return None, None
        return (found[0], found[1]) if found else (None, None)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # datasets -------------------------------------------------------------
    def upsert_rows(self, project: str, dataset: str, rows: Iterable[DatasetRow]) -> int:
        now = _now()
        values = [(project, dataset, r.id, r.facet_name, r.split, r.model_dump_json(), now) for r in rows]
        if not values:
            return 0
        insert_many(self.conn, "INSERT OR REPLACE INTO dataset_rows", values)
        return len(values)

    def read_rows(self, project: str, dataset: str) -> list[DatasetRow]:
        found = self.conn.execute(
            "SELECT row FROM dataset_rows WHERE project = ? AND dataset = ? ORDER BY id", [project, dataset]
        ).fetchall()
        return [DatasetRow.model_validate_json(r[0]) for r in found]

    def list_datasets(self) -> list[tuple[str, str, int]]:
        return self.conn.execute(
            "SELECT project, dataset, count(*) FROM dataset_rows GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()

    # label cache ----------------------------------------------------------
    def cached_labels(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        self.conn.execute("CREATE OR REPLACE TEMP TABLE wanted_keys (key VARCHAR)")
        insert_many(self.conn, "INSERT INTO wanted_keys", [(k,) for k in keys])
        found = self.conn.execute(
            "SELECT c.key, c.text FROM label_cache c SEMI JOIN wanted_keys w ON c.key = w.key"
        ).fetchall()
        return dict(found)

    def put_label(self, key: str, text: str, model: str, endpoint: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO label_cache VALUES (?, ?, ?, ?, ?)", [key, text, model, endpoint, _now()]
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
            [sha, facet_name, text, _now()],
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
            [sha, facet_name, backend, project, slug, function_id, json.dumps(experiment_ids), _now()],
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

    # experiments ----------------------------------------------------------
    def add_experiment(self, record: ExperimentRecord, rows: Iterable[EvalRow] | None = None) -> None:
        self.conn.execute("BEGIN TRANSACTION")
        try:
            self.conn.execute(
                "INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.experiment_id,
                    record.experiment_name,
                    record.created,
                    record.backend,
                    record.dataset,
                    record.dataset_project,
                    record.split,
                    record.model,
                    record.model_dump_json(),
                ],
            )
            if rows is not None:
                self.conn.execute(
                    "DELETE FROM experiment_rows WHERE experiment_id = ?", [record.experiment_id]
                )
                insert_many(
                    self.conn,
                    "INSERT INTO experiment_rows",
                    [(record.experiment_id, r.id, r.facet_name, r.split, r.model_dump_json()) for r in rows],
                )
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

    def experiments(self) -> list[ExperimentRecord]:
        found = self.conn.execute(
            "SELECT record FROM experiments ORDER BY created DESC, experiment_id DESC"
        ).fetchall()
        return [ExperimentRecord.model_validate_json(r[0]) for r in found]

    def experiment_rows(self, experiment_id: str) -> list[EvalRow]:
        found = self.conn.execute(
            "SELECT row FROM experiment_rows WHERE experiment_id = ? ORDER BY id", [experiment_id]
        ).fetchall()
        return [EvalRow.model_validate_json(r[0]) for r in found]

    def validation_runs(self, dataset: str, up_to: str | None = None) -> list[dict[str, str]]:
        """The prompt hashes ({facet: sha}) of each registry run on `dataset` that evaluated validation
        rows (split validation, or every split), created at or before `up_to`, newest first."""
        found = self.conn.execute(
            """SELECT json_extract(record, '$.prompt_hashes') FROM experiments
               WHERE dataset = ? AND (? IS NULL OR created <= ?)
                 AND (coalesce(split, '') = ''
                      OR list_contains(string_split(replace(lower(split), ' ', ''), ','), 'validation'))
               ORDER BY created DESC""",
            [dataset, up_to, up_to],
        ).fetchall()
        return [json.loads(r[0]) if r[0] else {} for r in found]

    # comparisons ----------------------------------------------------------
    def add_comparison(self, record: ComparisonRecord) -> None:
        self.conn.execute("BEGIN TRANSACTION")
        try:
            self.conn.execute(
                "INSERT OR REPLACE INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.comparison_id,
                    record.created,
                    record.baseline_experiment_id,
                    record.candidate_experiment_id,
                    record.dataset,
                    record.split,
                    record.target,
                    record.model_dump_json(),
                ],
            )
            insert_many(
                self.conn,
                "INSERT OR REPLACE INTO comparison_decisions",
                [
                    (
                        record.comparison_id,
                        d.facet_name,
                        d.verdict,
                        d.candidate_sha,
                        d.baseline_sha,
                        record.created,
                    )
                    for d in record.decisions
                ],
            )
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

    def _has_table(self, name: str) -> bool:
        """A store written by an older facetopt, opened read-only, may lack a newer table."""
        found = self.conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()
        return bool(found and found[0])

    def comparisons(self, candidate_sha: str | None = None) -> list[ComparisonRecord]:
        """Recorded comparisons, newest first; only those where some facet's candidate prompt had
        `candidate_sha` when it is given."""
        if not self._has_table("comparisons"):
            return []
        if candidate_sha is None:
            found = self.conn.execute(
                "SELECT record FROM comparisons ORDER BY created DESC, comparison_id DESC"
            ).fetchall()
        else:
            found = self.conn.execute(
                """SELECT c.record FROM comparisons c
                   WHERE c.comparison_id IN (
                       SELECT comparison_id FROM comparison_decisions WHERE candidate_sha = ?)
                   ORDER BY c.created DESC, c.comparison_id DESC""",
                [candidate_sha],
            ).fetchall()
        return [ComparisonRecord.model_validate_json(r[0]) for r in found]

    def has_experiment_rows(self, experiment_id: str) -> bool:
        found = self.conn.execute(
            "SELECT count(*) FROM experiment_rows WHERE experiment_id = ?", [experiment_id]
        ).fetchone()
        return bool(found and found[0])


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
    rows = [(k, t, m, e, _now()) for (k, t, m, e) in items]
    insert_many(store.conn, "INSERT OR REPLACE INTO label_cache", rows)


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def write_calls(store: LocalStore, items: list[tuple[str, str, Any, str, str]]) -> None:
    """(key, kind, value, model, endpoint) into the call cache; the newest value of a key wins."""
    latest = {
        key: (key, kind, dump_json(value), model, endpoint, _now())
        for key, kind, value, model, endpoint in items
    }
    insert_many(store.conn, "INSERT OR REPLACE INTO call_cache", list(latest.values()))
