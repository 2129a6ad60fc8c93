"""The invariants of the whole loop, each a named check computed from the store (read with duckdb),
the run folders and the fakes' own request records: never by asking facetopt what it decided.

A check returns the problems it found (empty: it holds). `Model` is what the test knows from the
actions it took: the labels a person decided, the splits rows were first seen in, the exit code of
each eval, what publish said.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.stateful.model import Check, Model
from tests.stateful.publish_checks import dry_run_equals_real, publish_follows_evidence, published_reads_back
from tests.stateful.snapshot import Snapshot, newcombe_paired, normalised
from tests.stateful.world import Step, World

GUARD_MARGIN = 0.05  # DECISIONS.md: non-inferiority at 0.05
TARGETS = {
    "balanced": ("binary_decision_match", ["positive_recall", "negative_specificity"]),
    "precision": ("negative_specificity", ["positive_recall"]),
    "recall": ("positive_recall", ["negative_specificity"]),
}
ALLOWED_EXITS = {0, 1, 2}


def human_labels_durable(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    rows = {(r["dataset"], r["id"]): r["row"] for r in after.rows}
    problems = []
    for key, label in model.human_labels.items():
        row = rows.get(key)
        if row is None:
            continue
        if row.get("expected") != label:
            problems.append(
                f"{key[1]} in {key[0]!r}: a person decided {label!r}, the store now has "
                f"{row.get('expected')!r} (review recorded: {bool((row.get('metadata') or {}).get('review'))})"
            )
    return problems


def split_never_changes(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    return [
        f"{r['id']} in {r['dataset']!r} moved {model.splits[(r['dataset'], r['id'])]} -> {r['split']}"
        for r in after.rows
        if (r["dataset"], r["id"]) in model.splits and model.splits[(r["dataset"], r["id"])] != r["split"]
    ]


def test_exclusive_across_datasets(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    places: dict[str, dict[str, set[str]]] = {}
    for r in after.rows:
        trace = (r["row"].get("metadata") or {}).get("source_root_span_id") or r["id"]
        places.setdefault(trace, {}).setdefault(r["split"], set()).add(r["dataset"])
    problems = []
    for trace, by_split in places.items():
        tested = by_split.get("test", set())
        other = by_split.get("train", set()) | by_split.get("validation", set())
        if any(a != b for a in tested for b in other):
            problems.append(
                f"trace {trace} is test in {sorted(tested)} and train/validation in {sorted(other)}"
            )
    return problems


def duplicates_share_split(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    groups: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    for r in after.rows:
        text = normalised(r["row"]["input"].get("preprocessed_text") or "")
        groups.setdefault((r["dataset"], r["facet"], text), {}).setdefault(r["split"], []).append(r["id"])
    return [
        f"{facet} rows with one conversation in {dataset!r} straddle splits: "
        + "; ".join(f"{split}: {ids[0]}" for split, ids in sorted(by_split.items()))
        for (dataset, facet, _), by_split in groups.items()
        if len(by_split) > 1
    ]


def _run_results(record: dict) -> tuple[set[str], set[str], set[str]] | None:
    """(selected row ids, ids with a result line, ids whose every result errored) from the run folder."""
    run_dir = record.get("run_dir")
    if not run_dir or not Path(run_dir, "rows.jsonl").exists():
        return None
    selected = {
        json.loads(line)["id"]
        for line in Path(run_dir, "rows.jsonl").read_text().splitlines()
        if line.strip()
    }
    results = Path(run_dir, "results.jsonl")
    seen: dict[str, bool] = {}
    for line in results.read_text().splitlines() if results.exists() else []:
        if line.strip():
            item = json.loads(line)
            seen[item["id"]] = seen.get(item["id"], False) or not item.get("error")
    return selected, set(seen), {i for i, ok in seen.items() if not ok}


def _truly_complete(model: Model, experiment_id: str, record: dict) -> bool | None:
    found = _run_results(record)
    if found is None or experiment_id not in model.eval_exits:
        return None
    selected, with_result, errored = found
    return selected <= with_result and model.eval_exits[experiment_id] == 0 and errored != selected


def complete_iff_all_results(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    problems = []
    for experiment_id, record in after.experiments.items():
        found = _run_results(record)
        if found is None or experiment_id not in model.eval_exits:
            continue
        selected, with_result, errored = found
        truly = _truly_complete(model, experiment_id, record)
        if (record.get("status") == "complete") != truly:
            problems.append(
                f"experiment {experiment_id[:8]} is {record.get('status')!r}: {len(with_result & selected)} of "
                f"{len(selected)} selected rows have a result, {len(errored)} errored, its command exited "
                f"{model.eval_exits[experiment_id]}"
            )
    return problems


def latest_previous_complete(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    """`latest`/`previous` resolve to a run that truly completed (judged from its run folder and
    its command's exit code, not from the status facetopt recorded)."""
    problems = []
    for name, experiment_id in model.resolved:
        record = after.experiments.get(experiment_id)
        if name not in ("latest", "previous") or record is None:
            continue
        truly = _truly_complete(model, experiment_id, record)
        if truly is False or record.get("status") != "complete":
            problems.append(
                f"{name!r} resolved to {experiment_id[:8]} (recorded {record.get('status')!r}), which did not complete"
            )
    return problems


def _metric_pairs(base: list[dict], cand: list[dict], metric: str) -> list[tuple[float, float]]:
    """Paired 0/1 scores by row id and label, duplicate conversations of a facet counted once."""
    by_id = {r["id"]: r for r in base}
    pairs, seen = [], set()
    for row in cand:
        other = by_id.get(row["id"])
        if other is None or other.get("expected_sha256") != row.get("expected_sha256"):
            continue
        b, c = (other.get("scores") or {}).get(metric), (row.get("scores") or {}).get(metric)
        if b is None or c is None or other.get("error") or row.get("error"):
            continue
        group = (row.get("facet_name"), normalised((row.get("input") or {}).get("preprocessed_text") or ""))
        if group in seen:
            continue
        seen.add(group)
        pairs.append((float(b), float(c)))
    return pairs


def keep_satisfies_guard_rule(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    problems = []
    old = {(d["comparison_id"], d["facet"]) for d in before.decisions}
    for decision in after.decisions:
        if decision["verdict"] != "KEEP" or (decision["comparison_id"], decision["facet"]) in old:
            continue
        record = decision["record"]
        target = record.get("target", "balanced")
        metric, guards = TARGETS[target]
        base = after.experiment_rows.get(record.get("baseline_experiment_id"), [])
        cand = after.experiment_rows.get(record.get("candidate_experiment_id"), [])
        if decision["facet"] != "overall":
            base = [r for r in base if r.get("facet_name") == decision["facet"]]
            cand = [r for r in cand if r.get("facet_name") == decision["facet"]]
        split = record.get("split")
        if split in ("train", "validation", "test"):
            base = [r for r in base if r.get("split") == split]
            cand = [r for r in cand if r.get("split") == split]
        pairs = _metric_pairs(base, cand, metric)
        low = newcombe_paired(pairs)[0] if len(pairs) >= 10 else None
        if low is None or low <= 0:
            problems.append(
                f"KEEP for {decision['facet']} ({target}) but {metric} on {len(pairs)} pairs has lower bound {low}"
            )
        unnamed = set(guards) - set(record.get("no_guard") or [])
        for guard in sorted(unnamed):
            guard_pairs = _metric_pairs(base, cand, guard)
            guard_low = newcombe_paired(guard_pairs)[0] if len(guard_pairs) >= 2 else None
            if guard_low is None or guard_low <= -GUARD_MARGIN - 1e-9:
                problems.append(
                    f"KEEP for {decision['facet']} ({target}) but guard {guard} on {len(guard_pairs)} pairs has "
                    f"lower bound {guard_low} (must be above -{GUARD_MARGIN})"
                )
    return problems


def _eval_split(step: Step) -> str | None:
    if "--split" in step.args:
        return step.args[step.args.index("--split") + 1]
    return None


def _dataset_of(step: Step) -> str | None:
    return step.args[step.args.index("--dataset") + 1] if "--dataset" in step.args else None


def _leaks(model: Model, snap: Snapshot, step: Step, role: str) -> list[str]:
    """Test conversations of the command's dataset found in the role's requests for that same facet
    (a request belongs to the facet whose prompt opening it carries; a trace's other facets may sit
    in other splits, and other datasets' test rows are another check's business). A request's
    conversation is the longest of the dataset's texts it carries: a test conversation that is only
    the opening of a longer one (a later trace of the same session) is not that row."""
    dataset = _dataset_of(step)
    texts: dict[tuple[str, str], set[str]] = {}
    for r in snap.rows:
        if r["dataset"] == dataset:
            text = r["row"]["input"].get("preprocessed_text") or ""
            if text:
                texts.setdefault((r["facet"], text), set()).add(r["split"])
    found = []
    for request in step.request_texts(role):
        facets = [f for f, prompt in model.prompts.items() if prompt and prompt[:80] in request]
        carried = [(f, t) for (f, t) in texts if f in facets and t in request]
        if not carried:
            continue
        longest = max(len(t) for _, t in carried)
        found += [t for f, t in carried if len(t) == longest and "test" in texts[(f, t)]]
    return found


def test_rows_stay_out(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    command = step.args[0]
    if command == "eval" and _eval_split(step) != "test":
        roles = ["facet_model"]
    elif command == "optimize":
        roles = ["facet_model", "proposer"]
    else:
        return []
    problems = []
    for role in roles:
        leaked = _leaks(model, before, step, role)
        if leaked:
            problems.append(
                f"a test row's conversation reached the {role} during `{command}`: {leaked[0][:60]!r}"
            )
    return problems


def test_looks_recorded(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    if step.args[:2] in (["dataset", "create"], ["dataset", "upload"]) or step.args[0] == "#":
        return []
    if step.refused_everything:  # no test row was answered: nothing about test was seen
        return []
    looked = [role for role in ("facet_model", "auditor") if _leaks(model, before, step, role)]
    if looked and after.test_touches <= before.test_touches:
        return [
            f"test rows reached the {looked[0]} during `{' '.join(step.args[:2])}` and no look at test was recorded"
        ]
    return []


def rerun_pays_nothing(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    if model.rerun is None:
        return []
    first, second = model.rerun
    if first.exit_code != 0:
        return []
    paid = {role: len(reqs) for role, reqs in second.requests.items() if reqs}
    return [f"re-running `{second.line}` on unchanged input sent {paid} model calls"] if paid else []


def no_secret_leak(world: World, model: Model, before: Snapshot, after: Snapshot, step: Step) -> list[str]:
    problems = []
    steps = [step] if model.rerun is None else [*model.rerun, step]
    for s in steps:
        for secret in world.secrets:
            if secret in s.stdout or secret in s.stderr:
                problems.append(f"a secret ({secret[:6]}...) is in the output of `{s.line}`")
        for role, requests in s.requests.items():
            for r in requests:
                sent = json.dumps(r.headers) + json.dumps(r.body)
                for owner, secret in [*world.keys.items(), ("braintrust", world.braintrust_key)]:
                    if owner != role and secret in sent:
                        problems.append(f"the {owner} key reached the {role} endpoint during `{s.line}`")
    for path in world.tmp.rglob("*"):  # the state folder and the review files
        if path.is_file():
            data = path.read_bytes()
            for secret in world.secrets:
                if secret.encode() in data:
                    problems.append(f"a secret ({secret[:6]}...) is in {path.relative_to(world.tmp)}")
    return sorted(set(problems))


def no_unexpected_error(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    problems = []
    steps = [step] if model.rerun is None else [*model.rerun, step]
    for s in steps:
        if s.exception is not None:
            problems.append(f"`{s.line}` raised {type(s.exception).__name__}: {s.exception}")
        elif s.exit_code not in ALLOWED_EXITS:
            problems.append(f"`{s.line}` exited {s.exit_code}")
        elif "unexpected" in s.stderr.lower() or "Traceback" in s.stderr:
            problems.append(
                f"`{s.line}` ended in an unexpected error: {s.stderr.strip().splitlines()[-1][:200]}"
            )
        elif s.exit_code == 1 and "error:" not in s.stderr:
            problems.append(f"`{s.line}` exited 1 without an `error:` line")
    return problems


def store_always_opens(
    world: World, model: Model, before: Snapshot, after: Snapshot, step: Step
) -> list[str]:
    """No command fails because facetopt itself holds its store open in another configuration (the
    hint then blames the user's --output-root for facetopt's own second connection)."""
    steps = [step] if model.rerun is None else [*model.rerun, step]
    marker = "Can't open a connection to same database file"
    return [f"`{s.line}` could not open its own store: {marker}" for s in steps if marker in s.stderr]


INVARIANTS: dict[str, Check] = {
    check.__name__: check
    for check in (
        human_labels_durable,
        split_never_changes,
        test_exclusive_across_datasets,
        duplicates_share_split,
        complete_iff_all_results,
        latest_previous_complete,
        keep_satisfies_guard_rule,
        publish_follows_evidence,
        dry_run_equals_real,
        published_reads_back,
        test_rows_stay_out,
        test_looks_recorded,
        rerun_pays_nothing,
        no_secret_leak,
        no_unexpected_error,
        store_always_opens,
    )
}
