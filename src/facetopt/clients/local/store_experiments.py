"""The local store's registry tables: experiments with their rows, looks at test rows, and
comparisons with their per-facet decisions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from facetopt.clients.local.store_connection import insert_many, utc_now
from facetopt.domain.experiments import ComparisonRecord, EvalRow, ExperimentRecord, HoldoutTouch


class ExperimentTables:
    """Reads and writes of the registry's tables; mixed into `LocalStore`, which owns `conn`."""

    conn: Any

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

    def update_experiment(self, experiment_id: str, **fields: Any) -> ExperimentRecord | None:
        """Change fields of a registry entry (its status at the end of a run, or once Braintrust
        confirms its rows); None when there is no such entry."""
        found = self.conn.execute(
            "SELECT record FROM experiments WHERE experiment_id = ?", [experiment_id]
        ).fetchone()
        if not found:
            return None
        record = ExperimentRecord.model_validate_json(found[0]).model_copy(update=fields)
        self.conn.execute(
            "UPDATE experiments SET record = ? WHERE experiment_id = ?",
            [record.model_dump_json(), experiment_id],
        )
        return record

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
        rows (split validation, or every split), created at or before `up_to`, newest first. Only
        complete runs count; a run another replaced (resumed) is not counted twice."""
        found = self.conn.execute(
            """SELECT json_extract(record, '$.prompt_hashes') FROM experiments
               WHERE dataset = ? AND (? IS NULL OR created <= ?)
                 AND json_extract_string(record, '$.superseded_by') IS NULL
                 AND coalesce(json_extract_string(record, '$.status'), 'complete') = 'complete'
                 AND (coalesce(split, '') = ''
                      OR list_contains(string_split(replace(lower(split), ' ', ''), ','), 'validation'))
               ORDER BY created DESC""",
            [dataset, up_to, up_to],
        ).fetchall()
        return [json.loads(r[0]) if r[0] else {} for r in found]

    # test split touches -------------------------------------------------------
    def add_test_touches(self, touches: Iterable[HoldoutTouch]) -> None:
        """Record looks at a dataset's test rows (eval --split test, inspect failures on test rows)."""
        values = [
            (
                t.dataset_project,
                t.dataset,
                t.facet_name,
                t.prompt_sha,
                t.experiment_id,
                t.command,
                t.forced,
                utc_now(),
            )
            for t in touches
        ]
        if values:
            insert_many(self.conn, "INSERT INTO test_touches", values)

    def test_touches(
        self, dataset_project: str | None = None, dataset: str | None = None
    ) -> list[HoldoutTouch]:
        """Every recorded look at the dataset's test rows (None: every dataset's), oldest first."""
        if not self._has_table("test_touches"):
            return []
        found = self.conn.execute(
            """SELECT dataset_project, dataset, facet_name, prompt_sha, experiment_id, command, forced
               FROM test_touches WHERE (? IS NULL OR dataset_project = ?) AND (? IS NULL OR dataset = ?)
               ORDER BY created, experiment_id""",
            [dataset_project, dataset_project, dataset, dataset],
        ).fetchall()
        fields = (
            "dataset_project",
            "dataset",
            "facet_name",
            "prompt_sha",
            "experiment_id",
            "command",
            "forced",
        )
        return [HoldoutTouch(**dict(zip(fields, row, strict=True))) for row in found]

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
