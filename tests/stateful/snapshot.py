"""What the store holds, read with duckdb directly (not through facetopt's store module), and
the statistics the guard rule needs, written here from the formulas (Wilson, Newcombe 1998)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb


@dataclass
class Snapshot:
    rows: list[dict[str, Any]]  # dataset rows: project, dataset, id, facet, split, row (parsed)
    experiments: dict[str, dict[str, Any]]  # experiment_id -> record
    experiment_rows: dict[str, list[dict[str, Any]]]  # experiment_id -> rows
    decisions: list[dict[str, Any]]  # comparison_decisions joined with comparisons
    test_touches: int

    def rows_of(self, dataset: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["dataset"] == dataset]

    def test_texts(self) -> set[str]:
        return {
            r["row"]["input"]["preprocessed_text"]
            for r in self.rows
            if r["split"] == "test" and r["row"]["input"].get("preprocessed_text")
        }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def read(store: Path) -> Snapshot:
    if not store.exists():
        return Snapshot([], {}, {}, [], 0)
    conn = duckdb.connect(str(store), read_only=True)
    try:
        tables = {t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}

        def fetch(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall() if sql.split(" FROM ")[1].split()[0] in tables else []

        rows = [
            {"project": p, "dataset": d, "id": i, "facet": f, "split": s, "row": _json(row)}
            for p, d, i, f, s, row in fetch(
                "SELECT project, dataset, id, facet_name, split, row FROM dataset_rows"
            )
        ]
        experiments = {e: _json(rec) for e, rec in fetch("SELECT experiment_id, record FROM experiments")}
        experiment_rows: dict[str, list[dict[str, Any]]] = {}
        for e, row in fetch("SELECT experiment_id, row FROM experiment_rows ORDER BY id"):
            experiment_rows.setdefault(e, []).append(_json(row))
        decisions = []
        if "comparisons" in tables and "comparison_decisions" in tables:
            for cid, facet, verdict, cand, created, record in conn.execute(
                "SELECT d.comparison_id, d.facet_name, d.verdict, d.candidate_sha, d.created, c.record "
                "FROM comparison_decisions d JOIN comparisons c USING (comparison_id) ORDER BY d.created"
            ).fetchall():
                decisions.append(
                    {
                        "comparison_id": cid,
                        "facet": facet,
                        "verdict": verdict,
                        "candidate_sha": cand,
                        "created": created,
                        "record": _json(record),
                    }
                )
        touches = fetch("SELECT count(*) FROM test_touches")
        return Snapshot(rows, experiments, experiment_rows, decisions, touches[0][0] if touches else 0)
    finally:
        conn.close()


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- statistics, from the formulas ----------------------------------------------------------------

Z = 1.959963984540054


def wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (2 * n * p + Z * Z) / (2 * (n + Z * Z))
    half = Z * math.sqrt(Z * Z + 4 * n * p * (1 - p)) / (2 * (n + Z * Z))
    return centre - half, centre + half


def newcombe_paired(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Newcombe's method 10 interval for p_candidate - p_baseline on paired 0/1 scores."""
    n = len(pairs)
    a = sum(1 for b, c in pairs if b == 1 and c == 1)
    b_only = sum(1 for b, c in pairs if b == 1 and c == 0)
    c_only = sum(1 for b, c in pairs if b == 0 and c == 1)
    d = n - a - b_only - c_only
    p1, p2 = (a + c_only) / n, (a + b_only) / n  # candidate, baseline
    l1, u1 = wilson(a + c_only, n)
    l2, u2 = wilson(a + b_only, n)
    delta = p1 - p2
    denominator = (a + b_only) * (c_only + d) * (a + c_only) * (b_only + d)
    if denominator == 0:
        phi = 0.0
    else:
        phi_num = a * d - b_only * c_only
        phi_num = max(phi_num - n / 2, 0) if phi_num > 0 else phi_num
        phi = phi_num / math.sqrt(denominator)
    dl = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    du = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return delta - dl, delta + du
