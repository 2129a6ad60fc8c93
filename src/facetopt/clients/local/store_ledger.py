"""The local store's row ledger: every dataset row facetopt wrote, on either backend, with its
trace, split, conversation key and human review. It is what "a dataset facetopt knows" means for
the split rules across datasets, and it remembers a reviewed label or a split after someone
deletes the row from the dataset by hand."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from facetopt.clients.local.store_connection import insert_columns, utc_now
from facetopt.domain.dataset import DatasetRow

# a store written before the ledger existed: its local datasets enter the ledger as they are
_FROM_LOCAL_ROWS = """
SELECT 'local', project, dataset, id, facet_name,
       json_extract_string(row, '$.metadata.source_root_span_id'), split,
       json_extract_string(row, '$.metadata.split_seed'),
       json_extract_string(row, '$.metadata.conversation_key'),
       json_extract_string(row, '$.expected'), json_extract(row, '$.metadata.review'), updated
FROM dataset_rows
"""
BACKFILL = f"INSERT INTO row_ledger {_FROM_LOCAL_ROWS} ON CONFLICT DO NOTHING"


@dataclass
class LedgerEntry:
    dataset: str
    id: str
    facet_name: str
    root_span_id: str | None
    split: str | None
    split_seed: str | None
    conversation_key: str | None
    expected: str | None
    review: dict[str, Any] | None


class LedgerTables:
    """Reads and writes of `row_ledger`; mixed into `LocalStore`, which owns `conn`."""

    conn: Any

    def remember_rows(self, backend: str, project: str, dataset: str, rows: Iterable[DatasetRow]) -> int:
        now = utc_now()
        values = [
            (
                backend, project, dataset, r.id, r.facet_name,
                _text(r.metadata.get("source_root_span_id")), r.split,
                _text(r.metadata.get("split_seed")), _text(r.metadata.get("conversation_key")),
                r.expected,
                json.dumps(r.metadata["review"]) if isinstance(r.metadata.get("review"), dict) else None,
                now,
            )
            for r in rows
        ]  # fmt: skip
        if values:
            insert_columns(self.conn, "INSERT OR REPLACE INTO row_ledger", values)
        return len(values)

    def ledger(self, backend: str, project: str) -> list[LedgerEntry]:
        """Every row facetopt wrote to the project's datasets on that backend. A store opened read-only
        before its first write by this version has no ledger yet: its local rows stand in."""
        import duckdb

        columns = (
            "dataset, id, facet_name, root_span_id, split, split_seed, conversation_key, expected, review"
        )
        try:
            found = self.conn.execute(
                f"SELECT {columns} FROM row_ledger WHERE backend = ? AND project = ? ORDER BY dataset, id",
                [backend, project],
            ).fetchall()
        except duckdb.CatalogException:
            if backend != "local":
                return []
            found = self.conn.execute(
                f"SELECT {columns} FROM ({_FROM_LOCAL_ROWS}) AS old(backend, project, dataset, id, "
                "facet_name, root_span_id, split, split_seed, conversation_key, expected, review, updated)"
                " WHERE project = ? ORDER BY dataset, id",
                [project],
            ).fetchall()
        return [
            LedgerEntry(
                dataset=dataset, id=row_id, facet_name=facet, root_span_id=trace, split=split,
                split_seed=seed, conversation_key=key, expected=expected,
                review=json.loads(review) if isinstance(review, str) else review,
            )
            for dataset, row_id, facet, trace, split, seed, key, expected, review in found
        ]  # fmt: skip


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
