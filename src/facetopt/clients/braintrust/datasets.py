"""Writing dataset rows to Braintrust with the SDK, and proving that every one arrived.

The SDK drops a batch after three failed tries with only a printed warning. Connections
make flushes synchronous (failures raise), and every upload is read back: each written id
must come back with the written `expected` (DECISIONS.md), or UploadVerificationError.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from facetopt.clients.braintrust.api import _scrub, api_error, call
from facetopt.clients.braintrust.connection import BraintrustConnection
from facetopt.clients.braintrust.flush import FlushDeadlineError, bounded_flush
from facetopt.clients.braintrust.lookup import resolve_dataset_id, resolve_project
from facetopt.clients.braintrust.replies import DatasetFetchPage, checked
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import FacetoptError, InputError, UploadVerificationError

FLUSH_EVERY = 500  # rows per flush: the SDK's queue silently drops beyond its size
FETCH_PAGE = 1000
VERIFY_REREADS = 2  # re-reads when rows are missing although every flush succeeded
VERIFY_DELAY_S = 1.0

log = logging.getLogger("facetopt.braintrust")


@dataclass
class UploadResult:
    dataset_id: str
    written: int
    verified: int
    missing_ids: list[str] = field(default_factory=list)
    mismatched_ids: list[str] = field(default_factory=list)
    project_id: str = ""
    flush_errors: list[str] = field(default_factory=list)  # what the SDK reported when a flush failed
    dataset_rows: int = 0  # rows the dataset holds on read-back, this upload's and earlier ones

    @property
    def ok(self) -> bool:
        return not self.missing_ids and not self.mismatched_ids


def fetch_dataset_events(conn: BraintrustConnection, dataset_id: str) -> list[dict]:
    """Every event of the dataset, through `/v1/dataset/{id}/fetch`, all pages."""
    events: list[dict] = []
    cursor = None
    for _ in range(100_000):
        body: dict[str, Any] = {"limit": FETCH_PAGE}
        if cursor:
            body["cursor"] = cursor

        def fetch_page(client: Any, body: dict[str, Any] = body) -> Any:
            return client.datasets.post_dataset_id_fetch(dataset_id, body=body)

        reply = call(conn, f"reading dataset {dataset_id}", fetch_page)
        page = checked(DatasetFetchPage, reply, f"POST /v1/dataset/{dataset_id}/fetch", "reading the dataset")
        events.extend(page.events)
        cursor = page.cursor
        if not cursor:
            break
    return newest_versions(events)


def _xact(event: dict) -> int:
    try:
        return int(event.get("_xact_id") or 0)
    except (TypeError, ValueError):
        return 0


def newest_versions(events: list[dict]) -> list[dict]:
    """One event per row id, the one with the newest `_xact_id`: later `/fetch` pages can repeat a
    row with an older version, and a stale label must never win (events without an id are kept)."""
    newest: dict[str, dict] = {}
    anonymous: list[dict] = []
    for event in events:
        row_id = event.get("id")
        if not isinstance(row_id, str):
            anonymous.append(event)
        elif row_id not in newest or _xact(event) >= _xact(newest[row_id]):
            newest[row_id] = event
    return [*newest.values(), *anonymous]


def _same(stored: Any, written: Any) -> bool:
    return json.dumps(stored, sort_keys=True) == json.dumps(written, sort_keys=True)


def _describe_flush_failure(exc: BaseException, secret: str | None) -> str:
    leaves: list[BaseException] = [exc]
    while leaves and isinstance(leaves[0], BaseExceptionGroup):
        leaves = list(leaves[0].exceptions) + leaves[1:]
    text = str(leaves[0]) if leaves else str(exc)
    # "log request failed. Elapsed time: ... Payload size: ... Error: 500: <body>" -> the error
    if "log request failed" in text and "Error: " in text:
        text = "log request failed: " + text.rsplit("Error: ", 1)[1]
    return _scrub(text, secret)[:300]


def _flush(
    dataset: Any, conn: BraintrustConnection, errors: list[str], pending: int, deadline: float | None
) -> None:
    try:
        bounded_flush(dataset.flush, f"{pending} dataset row(s)", deadline)
    except FacetoptError:
        raise
    except Exception as exc:  # the SDK raises a group of plain Exceptions; verification decides
        log.debug("dataset flush failed", exc_info=True)
        errors.append(_describe_flush_failure(exc, conn._secret()))


def _open_dataset(conn: BraintrustConnection, project_id: str, dataset_name: str) -> tuple[Any, str]:
    import braintrust

    dataset = braintrust.init_dataset(project_id=project_id, name=dataset_name, state=conn.state)
    try:
        return dataset, dataset.id  # the first use creates (or finds) the dataset
    except Exception as exc:
        raise api_error(exc, conn, f"creating dataset {dataset_name!r}") from None


def upload_rows(
    conn: BraintrustConnection,
    project_name_or_id: str,
    dataset_name: str,
    rows: Sequence[DatasetRow],
    flush_deadline: float | None = None,
) -> UploadResult:
    """Upsert rows by their stable id (re-uploading the same rows changes nothing), then verify.
    Each flush must end within `flush_deadline` seconds, else FlushDeadlineError (nothing more
    is sent from this process)."""
    project = resolve_project(conn, project_name_or_id, create=True)
    dataset, dataset_id = _open_dataset(conn, project.id, dataset_name)
    written: dict[str, str] = {}
    flush_errors: list[str] = []
    flushed = 0
    for count, row in enumerate(rows, start=1):
        try:
            dataset.insert(
                id=row.id,
                input=row.input,
                expected=row.expected,
                metadata=row.metadata,
                tags=list(dict.fromkeys(row.tags)),
            )
        except ValueError as exc:
            raise InputError(f"row {row.id} cannot be written to Braintrust: {exc}") from None
        written[row.id] = row.expected
        if count % FLUSH_EVERY == 0:
            pending = len(written) - flushed
            _flush_or_report(
                dataset, conn, flush_errors, pending, flushed, len(rows), dataset_name, flush_deadline
            )
            flushed = len(written)
    pending = len(written) - flushed
    _flush_or_report(dataset, conn, flush_errors, pending, flushed, len(rows), dataset_name, flush_deadline)
    result = verify_rows(conn, project.id, dataset_id, written, retry=not flush_errors)
    result.flush_errors = flush_errors
    if not result.ok:
        raise _verification_error(result, dataset_name)
    return result


def _flush_or_report(
    dataset: Any,
    conn: BraintrustConnection,
    errors: list[str],
    pending: int,
    flushed: int,
    total: int,
    dataset_name: str,
    deadline: float | None,
) -> None:
    try:
        _flush(dataset, conn, errors, pending, deadline)
    except FlushDeadlineError as error:
        taken = (
            f"the first {flushed} of the {total} rows had been sent"
            if flushed
            else f"none of the {total} rows had been sent"
        )
        error.message = (
            f"Braintrust did not take the rows written to dataset {dataset_name!r} within the flush "
            f"deadline ({deadline:g}s, --flush-deadline): {taken} before it stopped answering, so some may be missing"
        )
        raise


def verify_rows(
    conn: BraintrustConnection,
    project_id: str,
    dataset_id: str,
    expected_by_id: dict[str, Any],
    retry: bool = True,
) -> UploadResult:
    """Read the dataset back and compare every id and its expected."""
    for attempt in range(VERIFY_REREADS + 1):
        stored = {e.get("id"): e for e in fetch_dataset_events(conn, dataset_id)}
        missing = [i for i in expected_by_id if i not in stored]
        mismatched = [
            i
            for i in expected_by_id
            if i in stored and not _same(stored[i].get("expected"), expected_by_id[i])
        ]
        if not (missing or mismatched) or not retry or attempt == VERIFY_REREADS:
            break
        time.sleep(VERIFY_DELAY_S)
    verified = len(expected_by_id) - len(missing) - len(mismatched)
    return UploadResult(
        dataset_id,
        len(expected_by_id),
        verified,
        missing,
        mismatched,
        project_id=project_id,
        dataset_rows=len(stored),
    )


def _verification_error(result: UploadResult, dataset_name: str) -> FacetoptError:
    parts = []
    if result.missing_ids:
        parts.append(f"{len(result.missing_ids)} of {result.written} rows did not arrive")
    if result.mismatched_ids:
        parts.append(
            f"{len(result.mismatched_ids)} of {result.written} rows came back with a different expected"
        )
    message = " and ".join(parts) + f" in Braintrust dataset {dataset_name!r}"
    if result.flush_errors:
        message += f" (the SDK reported: {result.flush_errors[-1]})"
    error = UploadVerificationError(
        message,
        hint="the rows are kept in the run folder; upload them again with "
        "`facetopt dataset upload --run-dir <run folder>`",
    )
    error.result = result  # type: ignore[attr-defined]
    return error


def _to_row(event: dict) -> DatasetRow | None:
    expected = event.get("expected")
    if expected is None or not isinstance(event.get("id"), str):
        return None
    inp = event.get("input")
    return DatasetRow(
        id=event["id"],
        input=inp if isinstance(inp, dict) else {"value": inp},
        expected=expected if isinstance(expected, str) else json.dumps(expected),
        metadata=event.get("metadata") if isinstance(event.get("metadata"), dict) else {},
        tags=[t for t in event.get("tags") or [] if isinstance(t, str)],
    )


def read_dataset_rows(conn: BraintrustConnection, project: str, dataset_name: str) -> list[DatasetRow]:
    """The dataset's rows in id order (rows without an id or expected are left out and logged)."""
    project_id = resolve_project(conn, project).id
    dataset_id = resolve_dataset_id(conn, project_id, dataset_name)
    rows, skipped = [], 0
    for event in fetch_dataset_events(conn, dataset_id):
        row = _to_row(event)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    if skipped:
        log.warning("%d rows of dataset %r have no id or expected and were left out", skipped, dataset_name)
    return sorted(rows, key=lambda r: r.id)
