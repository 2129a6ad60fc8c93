"""Opening the local store (one DuckDB file): the tables' schema and its version, waiting while
another process holds the file, the errors for a file no wait can fix, and chunked inserts.

DuckDB allows one writing process, so callers open the store briefly and close it before starting
an eval subprocess; `LocalStore` (store.py) adds the tables' reads and writes to this connection.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

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
CREATE TABLE IF NOT EXISTS test_touches (
    dataset_project VARCHAR, dataset VARCHAR, facet_name VARCHAR, prompt_sha VARCHAR,
    experiment_id VARCHAR, command VARCHAR, forced BOOLEAN, created TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS comparisons (
    comparison_id VARCHAR PRIMARY KEY, created VARCHAR, baseline_id VARCHAR, candidate_id VARCHAR,
    dataset VARCHAR, split VARCHAR, target VARCHAR, record JSON);
CREATE TABLE IF NOT EXISTS comparison_decisions (
    comparison_id VARCHAR, facet_name VARCHAR, verdict VARCHAR, candidate_sha VARCHAR,
    baseline_sha VARCHAR, created VARCHAR, PRIMARY KEY (comparison_id, facet_name));
CREATE TABLE IF NOT EXISTS row_ledger (
    backend VARCHAR, project VARCHAR, dataset VARCHAR, id VARCHAR, facet_name VARCHAR,
    root_span_id VARCHAR, split VARCHAR, split_seed VARCHAR, conversation_key VARCHAR,
    expected VARCHAR, review JSON, updated TIMESTAMPTZ, PRIMARY KEY (backend, project, dataset, id));
"""


def insert_many(conn: Any, statement: str, rows: list[tuple], chunk: int = 500) -> None:
    """`<statement> VALUES (...), (...)` in chunks: DuckDB's executemany runs one statement per row."""
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        placeholders = ", ".join("(" + ", ".join("?" * len(part[0])) + ")" for _ in part)
        conn.execute(f"{statement} VALUES {placeholders}", [value for row in part for value in row])


def insert_columns(conn: Any, statement: str, rows: list[tuple]) -> None:
    """`<statement> SELECT unnest($1), unnest($2), ...`: each column bound as one list, a fraction of
    the Python work of one parameter per value. For columns whose values share one type (or None)."""
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    unnests = ", ".join(f"unnest(${index + 1})" for index in range(len(columns)))
    conn.execute(f"{statement} SELECT {unnests}", columns)


def utc_now() -> datetime:
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
    folder = path.parent
    if "read-only file system" in lowered:
        return StoreUnusableError(
            f"the local store {path} cannot be written: {folder} is on a read-only file system",
            hint="pass an --output-root on a writable disk",
        )
    if "permission denied" in lowered and (not path.exists() or not os.access(folder, os.W_OK)):
        # DuckDB creates the file and its .wal beside it: the folder is what must be writable
        return StoreUnusableError(
            f"the local store {path} cannot be created: the folder {folder} is not writable",
            hint=f"make {folder} writable (facetopt writes store.duckdb and store.duckdb.wal there), "
            "or pass another --output-root",
        )
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
    if "different configuration" in lowered:
        # this process holds the file already in the other mode (a cache writer's short
        # read-write transaction while a reader opens it): wait like for another process
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


# stores this process keeps open (StoreHold in store.py): DuckDB refuses a read-only connection to
# a database this process has open for writing, so while one is held every session writes
HELD: set[Path] = set()


class StoreConnection:
    """The open DuckDB connection (`conn`), with the schema created or checked; a context manager."""

    def __init__(self, path: Path, read_only: bool = False, wait: float = OPEN_WAIT):
        self.path = Path(path)
        read_only = read_only and self.path.absolute() not in HELD
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
                self._migrate()
                self.conn.execute("DELETE FROM store_meta")
                self.conn.execute("INSERT INTO store_meta VALUES (?, ?)", [SCHEMA_VERSION, _SCHEMA_SHA])
        except FacetoptError:
            self.conn.close()
            raise
        except Exception as exc:  # a DuckDB file that is not facetopt's, or damaged
            self.conn.close()
            raise _unusable(self.path, str(exc)) or StoreUnusableError(str(exc)[:200]) from None

    def _migrate(self) -> None:
        """In-place steps for a store an older facetopt wrote (the tables above are already there)."""

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
