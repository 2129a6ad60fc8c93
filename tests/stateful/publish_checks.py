"""The publish invariants: it succeeds exactly when the evidence rule (DECISIONS.md, recomputed here
from the store) holds or with --force, the dry run decides as the real run, and what was published
reads back as the prompt file's text."""

from __future__ import annotations

import json
from typing import Any

from tests.stateful.model import Model
from tests.stateful.snapshot import Snapshot
from tests.stateful.world import Step, World


def publish_follows_evidence(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    problems = []
    for outcome in model.publish:
        if outcome["dry_run"] or outcome["force"]:
            continue
        held = evidence_holds(before, outcome["facet"], outcome["sha"])
        if (outcome["exit_code"] == 0) != held:
            problems.append(
                f"publish of {outcome['facet']} exited {outcome['exit_code']} but the evidence rule "
                f"{'holds' if held else 'does not hold'}"
            )
    for outcome in model.publish:
        if not outcome["dry_run"] and outcome["force"] and outcome["exit_code"] != 0:
            problems.append(f"publish --force of {outcome['facet']} exited {outcome['exit_code']}")
    return problems


def evidence_holds(snap: Snapshot, facet: str, sha: str) -> bool:
    has_test = any(r["split"] == "test" and r["facet"] == facet for r in snap.rows)
    wanted = "test" if has_test else "validation"
    evaluated = False
    for experiment_id, record in snap.experiments.items():
        if (record.get("prompt_hashes") or {}).get(facet) != sha or record.get("status") != "complete":
            continue
        if record.get("simulated_roles"):
            continue
        rows = [r for r in snap.experiment_rows.get(experiment_id, []) if r.get("facet_name") == facet]
        rows = [r for r in rows if r.get("split") == wanted]
        if rows and all(
            not str((r.get("metadata") or {}).get("ground_truth_model", "")).startswith("simulated:")
            for r in rows
        ):
            evaluated = True
    mine = [d for d in snap.decisions if d["facet"] == facet and d["candidate_sha"] == sha]
    newest = mine[-1] if mine else None
    kept = newest is not None and newest["verdict"] == "KEEP" and (newest["record"].get("split") == wanted)
    return evaluated and kept


def dry_run_equals_real(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    """The dry run ends as the real run does (DECISIONS.md: same decision, same exit status)."""
    dry = [o for o in model.publish if o["dry_run"]]
    real = [o for o in model.publish if not o["dry_run"]]
    problems = []
    for d, r in zip(dry, real, strict=False):
        if d["force"] == r["force"] and (d["exit_code"] == 0) != (r["exit_code"] == 0):
            problems.append(
                f"publish of {d['facet']}: the dry run exited {d['exit_code']}, the real run {r['exit_code']}"
            )
    return problems


def published_reads_back(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    problems = []
    for outcome in model.publish:
        if outcome["dry_run"] or outcome["exit_code"] != 0:
            continue
        written = sorted((world.root / "published").glob("*-functions.json"))
        text = written[-1].read_text() if written else ""
        if outcome["prompt"] not in _all_strings(text):
            problems.append(
                f"publish of {outcome['facet']} succeeded but the published file lacks its prompt"
            )
    return problems


def _all_strings(text: str) -> set[str]:
    try:
        data = json.loads(text)
    except ValueError:
        return set()
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return found
