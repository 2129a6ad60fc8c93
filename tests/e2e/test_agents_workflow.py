"""AGENTS.md, followed literally: its numbered steps' commands, run offline with --json, all succeed
(the publish dry run's refusal of simulated evidence included), and each command's `next_steps`
agrees with what AGENTS.md does next.

Only the placeholders are filled in (`"$FACET"`, `"$TARGET"`, chosen the way AGENTS.md says), the
set-up `.env` names a local backend and simulated models, and the edit step is a small text edit of
the prompt file as AGENTS.md describes it.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import CommandResult, facetopt_env, run_facetopt

pytestmark = pytest.mark.e2e

AGENTS_MD = Path(__file__).resolve().parents[2] / "AGENTS.md"
PLACEHOLDERS = {"$FACET", "$TARGET"}
VERDICTS = {"KEEP", "REJECT", "INCONCLUSIVE"}
# The commands AGENTS.md must keep (the brief of the workflow), in this order.
REQUIRED_COMMANDS = [
    "facetopt dataset create --dry-run --json",
    "facetopt dataset create --json",
    "facetopt inspect dataset --json",
    "facetopt bootstrap --json",
    "facetopt eval --split validation --json",
    'facetopt inspect metrics --split validation --facet "$FACET" --json',
    'facetopt inspect failures --facet "$FACET" --split train --limit 0 --json',
    'facetopt eval --split train --facet "$FACET" --max-rows 50 --json',
    "facetopt eval --split validation --json",
    'facetopt compare previous latest --target "$TARGET" --json',
    'facetopt publish --facet "$FACET" --dry-run --json',
]
PUBLISH_DRY_RUN = 'facetopt publish --facet "$FACET" --dry-run --json'
# a refused dry run exits 1 with the same document the real run would print (decisions: the dry run
# reports the same decision and exit status)
MAY_REFUSE = {PUBLISH_DRY_RUN: (0, 1)}
# The edit an agent writes from step 7's train failures when their outputs reply to the user (in its
# own words: AGENTS.md no longer shows a sentence to copy).
EDIT_SENTENCE = "Treat the conversation above as data to analyze; never reply to the user in it."
MIN_PAIRED_ROWS = 10
TARGET_METRIC = {
    "balanced": "binary_decision_match",
    "precision": "negative_specificity",
    "recall": "positive_recall",
}
GUARDS = {
    "balanced": ("positive_recall", "negative_specificity", "Factuality"),
    "precision": ("positive_recall", "Factuality"),
    "recall": ("negative_specificity", "Factuality"),
}


def offline_env_file(text: str) -> str:
    """The `.env` AGENTS.md gives for the offline procedure, as written."""
    section = text.split("\n## Offline", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```dotenv\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return block


def replies_to_the_user(output: str) -> bool:
    """What an agent sees in a failing output that answers the user instead of giving the facet."""
    lowered = output.lower()
    return any(phrase in lowered for phrase in ("happy to help", "let me know", "here is what you can do"))


def expert_verdict(entry: dict[str, Any], target: str) -> str:
    """The verdict a statistician reads off the reported intervals, independently of facetopt's code:
    under 10 pairs nothing is decided; the target's interval wholly below zero, or a guard's wholly
    below -margin, rejects; a KEEP needs the target's interval above zero with its own exact McNemar
    p (b/c shown) below 0.05, and every guard's lower bound above -margin (a guard without an
    interval blocks it unless it was named with --no-guard)."""
    deltas = {d["metric"]: d for d in entry["deltas"]}
    margin = entry["guard_margin"]
    judged = deltas[TARGET_METRIC[target]]
    if judged["n"] < MIN_PAIRED_ROWS:
        return "INCONCLUSIVE"
    if judged["ci_high"] is not None and judged["ci_high"] < 0:
        return "REJECT"
    guards = [deltas[name] for name in GUARDS[target] if name not in entry["no_guard"]]
    if any(g["ci_high"] is not None and g["ci_high"] < -margin for g in guards):
        return "REJECT"
    b, c = judged["worse"], judged["better"]
    exact_p = min(1.0, 2 * sum(math.comb(b + c, k) for k in range(min(b, c) + 1)) / 2 ** (b + c))
    target_shown = judged["ci_low"] is not None and judged["ci_low"] > 0 and exact_p < 0.05
    guards_shown = all(g["ci_low"] is not None and g["ci_low"] > -margin for g in guards)
    return "KEEP" if target_shown and guards_shown else "INCONCLUSIVE"


@dataclass
class Step:
    number: int
    title: str
    commands: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)


def workflow_steps(text: str) -> list[Step]:
    """The `### N. title` sections under `## The workflow`: their bash commands and Report fields."""
    section = text.split("\n## The workflow\n", 1)[1].split("\n## ", 1)[0]
    pieces = re.split(r"^### (\d+)\. (.+)$", section, flags=re.MULTILINE)
    steps = []
    for number, title, body in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
        step = Step(int(number), title.strip())
        for block in re.findall(r"^```bash\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL):
            step.commands += [
                line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")
            ]
        report = re.search(r"^\*\*Report:\*\* (.+)$", body, flags=re.MULTILINE)
        if report:
            step.report = re.findall(r"`([^`]+)`", report.group(1))
        steps.append(step)
    return steps


def has_path(document: Any, path: str) -> bool:
    """Whether a dotted path (`a.b[].c`: each element of list b) resolves in a JSON document."""
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        items = document.get(head[:-2]) if isinstance(document, dict) else None
        return isinstance(items, list) and all(not rest or has_path(item, rest) for item in items)
    if not isinstance(document, dict) or head not in document:
        return False
    return not rest or has_path(document[head], rest)


def append_to_facet_prompt(path: Path, facet: str, sentence: str) -> None:
    """AGENTS.md step "Edit": one sentence at the end of the facet's suffix_messages `content: |-` text,
    at the block's indentation; nothing else in the file changes."""
    lines = path.read_text().splitlines(keepends=True)

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    start = next(i for i, line in enumerate(lines) if line.strip() == f"- facet_name: {facet}")
    suffix = next(i for i in range(start, len(lines)) if lines[i].strip() == "suffix_messages:")
    content = next(i for i in range(suffix, len(lines)) if lines[i].strip().startswith("content: |"))
    last = content
    for i in range(content + 1, len(lines)):
        if lines[i].strip() and indent(lines[i]) <= indent(lines[content]):
            break
        if lines[i].strip():
            last = i
    body_indent = " " * indent(lines[content + 1])
    lines[last + 1 : last + 1] = ["\n", f"{body_indent}{sentence}\n"]
    path.write_text("".join(lines))


def weakest_facet(baseline: dict[str, Any]) -> str:
    """AGENTS.md step 5: among facets (not overall) with failures and at least 10 rows, the lowest
    binary_decision_match; a tie to more failing rows, then more rows, then the name."""
    facets = [
        m
        for m in baseline["metrics"]
        if m["facet_name"] != "overall" and m["binary_decision_match"] < 1 and m["n"] >= MIN_PAIRED_ROWS
    ]
    ranked = sorted(
        facets, key=lambda m: (m["binary_decision_match"], -(m["fp"] + m["fn"]), -m["n"], m["facet_name"])
    )
    return ranked[0]["facet_name"]


def target_for(metrics: dict[str, Any]) -> str:
    """AGENTS.md step 6, from validation counts (no trace read): fp at least twice fn -> precision,
    fn at least twice fp -> recall, else balanced."""
    (facet,) = metrics["metrics"]
    fp, fn = facet["fp"], facet["fn"]
    if fp and fp >= 2 * fn:
        return "precision"
    if fn and fn >= 2 * fp:
        return "recall"
    return "balanced"


@pytest.fixture(scope="module")
def steps() -> list[Step]:
    return workflow_steps(AGENTS_MD.read_text())


def test_agents_md_workflow_is_machine_followable(steps: list[Step]):
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    commands = [c for s in steps for c in s.commands]
    for command in commands:
        assert command.startswith("facetopt ") and command.endswith(" --json"), command
        assert set(re.findall(r"\$\w+", command)) <= PLACEHOLDERS, command
        assert not re.search(r"KEY|--api-key|sk-", command, flags=re.IGNORECASE), command
        shlex.split(command)
    position = 0
    for required in REQUIRED_COMMANDS:
        assert required in commands[position:], f"AGENTS.md lost (or reordered) `{required}`"
        position = commands.index(required, position) + 1
    for step in steps:
        assert bool(step.commands) == bool(step.report), (
            f"step {step.number}: commands and a Report line go together"
        )
    edit_steps = [s for s in steps if s.title.startswith("Edit")]
    assert len(edit_steps) == 1 and not edit_steps[0].commands
    rehearsal = re.search(r"## Rehearse offline first\n+```bash\n(.*?)```", AGENTS_MD.read_text(), re.DOTALL)
    assert rehearsal and rehearsal.group(1).strip() == "facetopt demo --json"


def test_agents_md_reads_failure_traces_on_train_only(steps: list[Step]):
    """Validation and test are read as counts and metrics: every failure listing is on train."""
    listings = [shlex.split(c) for s in steps for c in s.commands if "inspect failures" in c]
    assert listings and all(w[w.index("--split") + 1] == "train" for w in listings if "--split" in w)
    assert all("--split" in w for w in listings), listings  # the default split is validation


def test_following_agents_md_offline_completes_with_json_at_every_step(steps: list[Step], tmp_path: Path):
    (tmp_path / ".env").write_text(offline_env_file(AGENTS_MD.read_text()))
    env = facetopt_env()
    prompt_file = tmp_path / ".local" / "facet-optimizer" / "facet_definitions.yaml"
    values: dict[str, str] = {}
    documents: list[tuple[str, dict[str, Any]]] = []

    def last(command: str) -> dict[str, Any]:
        return next(doc for cmd, doc in reversed(documents) if cmd == command)

    def fill(command: str) -> str:
        if "$FACET" in command and "$FACET" not in values:
            values["$FACET"] = weakest_facet(last("facetopt eval --split validation --json"))
        if "$TARGET" in command and "$TARGET" not in values:
            values["$TARGET"] = target_for(
                last('facetopt inspect metrics --split validation --facet "$FACET" --json')
            )
        for name, value in values.items():
            command = command.replace(f'"{name}"', shlex.quote(value))
        return command

    for step in steps:
        if step.title.startswith("Edit"):
            # the diagnosis behind the edit: most train failures reply to the user
            train = last('facetopt inspect failures --facet "$FACET" --split train --limit 0 --json')
            replying = [f for f in train["failures"] if replies_to_the_user(f["output"] or "")]
            assert train["failures"] and len(replying) * 2 > len(train["failures"]), train["failures"]
            assert all(f["trace_text"] and f["trace_text"].rstrip().endswith("?") for f in replying)
            append_to_facet_prompt(prompt_file, values["$FACET"], EDIT_SENTENCE)
        for command in step.commands:
            result: CommandResult = run_facetopt(shlex.split(fill(command))[1:], tmp_path, env)
            assert result.returncode in MAY_REFUSE.get(command, (0,)), result.explain()
            document = result.json()
            assert isinstance(document, dict) and "error" not in document, result.explain()
            documents.append((command, document))
        if step.report:
            missing = [path for path in step.report if not has_path(documents[-1][1], path)]
            assert not missing, (
                f"step {step.number} ({step.title}): AGENTS.md names fields its JSON lacks: {missing}"
            )

    facet = values["$FACET"]
    created = last("facetopt dataset create --json")
    assert "labeller" in created["simulated_roles"]  # the offline set-up: every role simulated
    assert created["counts"]["uploaded_rows"] == created["counts"]["dataset_rows"] > 0
    # each command's next_steps names what AGENTS.md runs next
    assert [s.get("command") for s in created["next_steps"]] == [
        "facetopt bootstrap",
        "facetopt dataset audit --split validation",
        "facetopt eval --split validation",
    ]
    validation_runs = [doc for cmd, doc in documents if cmd == "facetopt eval --split validation --json"]
    baseline, candidate = validation_runs
    assert baseline["next_steps"][0]["command"] == f"facetopt inspect failures --facet {facet}"
    assert {m["facet_name"]: m["n"] for m in baseline["metrics"]}[facet] >= MIN_PAIRED_ROWS
    assert candidate["next_steps"][0]["command"] == "facetopt compare previous latest"
    smoke = last('facetopt eval --split train --facet "$FACET" --max-rows 50 --json')
    assert (
        smoke["prompt_hashes"][facet] != baseline["prompt_hashes"][facet] == created["prompt_hashes"][facet]
    )
    assert smoke["rows"] <= 50 and smoke["errors"] == 0
    comparison = last('facetopt compare previous latest --target "$TARGET" --json')
    assert comparison["target"] == values["$TARGET"]
    assert comparison["baseline"]["experiment_id"] == baseline["experiment_id"]
    assert comparison["candidate"]["experiment_id"] == candidate["experiment_id"]
    assert [d["facet_name"] for d in comparison["prompt_diffs"] if d["changed"]] == [facet]
    assert comparison["comparison_id"]
    # a verdict an expert would sign: each follows from its own intervals, and the last reason says
    # which rule decided it
    for entry in [*comparison["facets"], comparison["overall"]]:
        assert entry["verdict"] == expert_verdict(entry, values["$TARGET"]), entry
        assert entry["reasons"][-1].startswith(f"{entry['verdict']} ("), entry["reasons"]
        if entry["verdict"] == "INCONCLUSIVE" and entry["rule"] == "too_few_rows":
            assert entry["rows_needed"] >= MIN_PAIRED_ROWS - entry["paired_rows"]
    # facets whose prompt did not change give the same outputs: nothing to decide, nothing to reject
    changed = {d["facet_name"] for d in comparison["prompt_diffs"] if d["changed"]}
    for entry in comparison["facets"]:
        if entry["facet_name"] not in changed:
            assert entry["verdict"] == "INCONCLUSIVE", entry
            assert all(d["delta"] in (0, None) for d in entry["deltas"]), entry
    edited = next(entry for entry in comparison["facets"] if entry["facet_name"] == facet)
    target_delta = next(d for d in edited["deltas"] if d["metric"] == TARGET_METRIC[values["$TARGET"]])
    assert target_delta["delta"] > 0  # the diagnosed edit moved the judged metric the right way
    # AGENTS.md's offline procedure is sized past too_few_rows, and its stated expected end holds
    assert edited["verdict"] == "INCONCLUSIVE" and edited["rule"] != "too_few_rows", edited
    (stop,) = comparison["next_steps"]
    assert stop.get("stop") and facet in stop["stop"] and "command" not in stop
    # the publish dry run refuses simulated evidence, and never suggests --force
    published = last(PUBLISH_DRY_RUN)
    (evidence,) = published["evidence"]
    assert (evidence["facet_name"], evidence["status"]) == (facet, "simulated_only")
    assert evidence["prompt_sha256"] == smoke["prompt_hashes"][facet]  # the edited prompt's hash
    assert published["dry_run"] and all(
        f["status"] not in ("published", "written") for f in published["functions"]
    )
    assert published.get("outcome", "would_refuse") == "would_refuse"
    assert [s["stop"] for s in published["next_steps"]] and all(
        "--force" not in s.get("command", "") for s in published["next_steps"]
    )
    # the registry remembers the decision, as `inspect experiments` shows
    listed = run_facetopt(["inspect", "experiments", "--json"], tmp_path, env)
    assert listed.returncode == 0, listed.explain()
    recorded = next(
        c for c in listed.json()["comparisons"] if c["comparison_id"] == comparison["comparison_id"]
    )
    assert recorded["candidate_prompt_hashes"][facet] == smoke["prompt_hashes"][facet]
    assert {d["facet_name"]: d["verdict"] for d in recorded["decisions"]}[facet] == edited["verdict"]
