"""`facetopt demo` end to end: every step's artifacts exist and agree with each other and with the verdict."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import load_prompt_file
from facetopt.services.demo.loop import (
    BOUNDARY_SENTENCE,
    DEMO_DATASET,
    DEMO_PROJECT,
    SMOKE_ROWS,
    DemoSummary,
    PromptChange,
)
from facetopt.services.experiments.compare import compare_experiments
from facetopt.services.experiments.registry import open_experiments
from facetopt.settings import load_settings
from tests.e2e.helpers import DemoRun, run_facetopt

pytestmark = pytest.mark.e2e

VERDICTS = {"KEEP", "REJECT", "INCONCLUSIVE"}
STEP_COMMANDS = [
    "facetopt dataset create",
    "facetopt bootstrap",
    "facetopt eval",
    "facetopt inspect failures",
    "$EDITOR",
    "facetopt eval",
    "facetopt eval",
    "facetopt compare",
    "facetopt publish",
    "facetopt dataset audit",
    "facetopt report",
]


def _store(demo_run: DemoRun) -> LocalStore:
    return LocalStore(demo_run.output_root / "store.duckdb", read_only=True)


def _dataset_summary(demo_run: DemoRun) -> dict:
    return json.loads((Path(demo_run.summary["run_dir"]) / "summary.json").read_text())


def test_demo_prints_one_summary_document_with_a_computed_verdict(demo_run: DemoRun):
    summary = demo_run.summary
    DemoSummary.model_validate(summary)
    assert Path(summary["output_root"]) == demo_run.output_root
    assert summary["verdict"] in VERDICTS and summary["facet_verdict"] in VERDICTS
    assert set(summary["simulated_roles"]) == {"labeller", "facet_model", "judge"}
    assert summary["deltas"]["binary_decision_match"] is not None
    assert summary["facet_deltas"]["binary_decision_match"] is not None
    # the last step is a publish dry run of the edited facet; simulated runs are no evidence
    assert summary["publish_slug"] == f"facet-optimizer-{summary['weakest_facet']}"
    assert summary["publish_evidence"] == "simulated_only"
    assert not (demo_run.output_root / "published").exists()


def test_each_step_is_announced_with_its_command_after_its_numbered_title(demo_run: DemoRun):
    lines = [line for line in demo_run.result.stderr.splitlines() if line.strip()]
    commands = demo_run.announced_commands
    assert len(commands) == len(STEP_COMMANDS)
    assert all(command.startswith(prefix) for command, prefix in zip(commands, STEP_COMMANDS, strict=True))
    command_lines = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    for number, position in enumerate(command_lines, start=1):
        # the title (wrapped at the width) sits between its rule and its command
        rule = max(i for i in range(position) if set(lines[i]) == {"─"})
        assert lines[rule + 1].startswith(f"{number}. "), lines[rule + 1]
    facet, root = demo_run.summary["weakest_facet"], str(demo_run.output_root)
    assert all(f"--output-root {root}" in c for c in commands if c.startswith("facetopt"))
    assert "--split validation" in commands[2] and "--split validation" in commands[6]
    assert f"--split train --facet {facet} --max-rows {SMOKE_ROWS}" in commands[5]
    assert f"--facet {facet}" in commands[3]
    assert commands[4] == f"$EDITOR {demo_run.summary['prompt_change']['prompt_file']}"


def test_dataset_row_counts_agree_across_summary_run_folder_and_store(demo_run: DemoRun):
    run_dir = Path(demo_run.summary["run_dir"])
    dataset_summary = _dataset_summary(demo_run)
    file_rows = [
        json.loads(line) for line in (run_dir / "dataset_rows.jsonl").read_text().splitlines() if line
    ]
    with _store(demo_run) as store:
        stored = store.read_rows(DEMO_PROJECT, DEMO_DATASET)
    assert demo_run.summary["dataset_rows"] == dataset_summary["counts"]["dataset_rows"] > 0
    assert len(file_rows) == len(stored) == demo_run.summary["dataset_rows"]
    assert {row["id"] for row in file_rows} == {row.id for row in stored}
    stored_splits = Counter((row.facet_name, row.split) for row in stored)
    reported_splits = Counter(
        {
            (facet, split): n
            for facet, splits in dataset_summary["split_counts"].items()
            for split, n in splits.items()
        }
    )
    assert stored_splits == reported_splits


def test_prompt_file_holds_the_edit_with_its_comments_and_the_recorded_hashes(demo_run: DemoRun):
    change = demo_run.summary["prompt_change"]
    facet = demo_run.summary["weakest_facet"]
    path = demo_run.output_root / "facet_definitions.yaml"
    assert Path(change["prompt_file"]) == path and change["facet_name"] == facet
    text = path.read_text()
    assert text.startswith("# facetopt prompt file"), "the prompt file's comments were lost"
    assert text.count(BOUNDARY_SENTENCE) == 1
    document = load_prompt_file(path)
    assert document.facet(facet).prompt_sha256 == change["after_sha256"] != change["before_sha256"]
    captured = _dataset_summary(demo_run)["prompt_hashes"]
    assert captured[facet] == change["before_sha256"]
    for other in set(captured) - {facet}:
        assert document.facet(other).prompt_sha256 == captured[other]


def test_registry_holds_baseline_smoke_and_candidate_with_their_prompt_hashes(demo_run: DemoRun):
    summary, facet = demo_run.summary, demo_run.summary["weakest_facet"]
    before, after = summary["prompt_change"]["before_sha256"], summary["prompt_change"]["after_sha256"]
    ids = [summary["baseline_experiment"], summary["smoke_experiment"], summary["candidate_experiment"]]
    with _store(demo_run) as store:
        records = {record.experiment_id: record for record in store.experiments()}
        rows = {experiment_id: store.experiment_rows(experiment_id) for experiment_id in ids}
        dataset = store.read_rows(DEMO_PROJECT, DEMO_DATASET)
    assert set(records) == set(ids)
    baseline, smoke, candidate = (records[i] for i in ids)
    assert baseline.created <= smoke.created <= candidate.created
    for record in (baseline, smoke, candidate):
        assert record.backend == "local" and record.row_count == len(rows[record.experiment_id]) > 0

    validation_ids = {row.id for row in dataset if row.split == "validation"}
    # every validation row, although FACET_OPTIMIZER_MAX_ROWS was set in the demo's environment
    assert baseline.split == candidate.split == "validation"
    assert (
        {r.id for r in rows[baseline.experiment_id]}
        == {r.id for r in rows[candidate.experiment_id]}
        == validation_ids
    )

    assert smoke.split == "train" and smoke.row_count <= SMOKE_ROWS
    assert smoke.filters.get("facet") == [facet] and smoke.filters.get("max_rows") == SMOKE_ROWS
    assert {(r.facet_name, r.split) for r in rows[smoke.experiment_id]} == {(facet, "train")}

    assert baseline.prompt_hashes[facet] == before
    assert smoke.prompt_hashes[facet] == candidate.prompt_hashes[facet] == after
    assert {k: v for k, v in candidate.prompt_hashes.items() if k != facet} == {
        k: v for k, v in baseline.prompt_hashes.items() if k != facet
    }


def test_compare_recomputed_from_the_stored_rows_gives_the_demo_verdict_and_deltas(demo_run: DemoRun):
    summary = demo_run.summary
    flags = {
        "backend": "local",
        "output_root": demo_run.output_root,
        "target_project": DEMO_PROJECT,
        "dataset": DEMO_DATASET,
    }
    with open_experiments(load_settings(None, **flags)) as experiments:
        report = compare_experiments(
            experiments, summary["baseline_experiment"], summary["candidate_experiment"], split="validation"
        )
    facet = next(c for c in report.facets if c.facet_name == summary["weakest_facet"])
    assert report.overall.verdict == summary["verdict"]
    assert facet.verdict == summary["facet_verdict"]
    assert {d.metric: d.delta for d in report.overall.deltas} == summary["deltas"]
    assert {d.metric: d.delta for d in facet.deltas} == summary["facet_deltas"]


def test_the_announced_compare_command_repeats_the_verdict_by_hand(demo_run: DemoRun):
    command = next(c for c in demo_run.announced_commands if c.startswith("facetopt compare"))
    result = run_facetopt([*shlex.split(command)[1:], "--json"], demo_run.cwd)
    assert result.returncode == 0, result.explain()
    report = result.json()
    summary = demo_run.summary
    assert report["baseline"]["experiment_id"] == summary["baseline_experiment"]
    assert report["candidate"]["experiment_id"] == summary["candidate_experiment"]
    assert report["overall"]["verdict"] == summary["verdict"]
    changed = [d["facet_name"] for d in report["prompt_diffs"] if d["changed"]]
    assert changed == [summary["weakest_facet"]]


@pytest.mark.parametrize("as_json", [False, True])
def test_a_non_empty_output_root_is_refused(tmp_path: Path, as_json: bool):
    root = tmp_path / "taken"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["demo", "--output-root", str(root), *(["--json"] if as_json else [])])
    assert result.exit_code == 1
    assert f"error: {root} is not empty" in result.stderr
    assert "hint: " in result.stderr
    if as_json:
        assert json.loads(result.stdout)["error"]["exit_code"] == 1
    assert [p.name for p in root.iterdir()] == ["keep.txt"]


def test_human_output_prints_each_command_under_its_step_then_the_summary(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch
):
    """The table output, replayed from the JSON run's steps through the real renderer (no second demo)."""
    summary = demo_run.summary
    commands = demo_run.announced_commands

    def replay(settings, steps, announce, warn, optimize=False):
        for number, command in enumerate(commands, start=1):
            steps.step(f"{number}. step {number}", shlex.split(command))
            if command.startswith("$EDITOR"):
                steps.show("edit", PromptChange.model_validate(summary["prompt_change"]))
        return DemoSummary.model_validate(summary)

    monkeypatch.setattr("facetopt.services.demo.loop.run_demo", replay)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    positions = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    assert [lines[i][2:] for i in positions] == commands
    for number, position in enumerate(positions, start=1):
        assert lines[position - 1].startswith(f"{number}. step {number}")
    assert "  + " + BOUNDARY_SENTENCE.split()[0] in "\n".join(lines)
    assert f"+ {' '.join(BOUNDARY_SENTENCE.split())}" in " ".join(result.stdout.split())
    verdict_line = next(line for line in lines if line.startswith("verdict: "))
    assert (
        f"{summary['verdict']} overall, {summary['facet_verdict']} for {summary['weakest_facet']}"
        in verdict_line
    )
    assert lines.index(verdict_line) > positions[-1]


def test_the_audit_step_doubts_exactly_the_planted_label_mistakes_of_validation(demo_run: DemoRun):
    """Step 9's second opinion disagrees with the validation rows the simulated labeller got wrong on
    purpose (hash-chosen, see simulation/labeller.py) and with no other."""
    from facetopt.simulation.labeller import labeller_value

    summary = demo_run.summary
    with _store(demo_run) as store:
        rows = [r for r in store.read_rows(DEMO_PROJECT, DEMO_DATASET) if r.split == "validation"]
        prompts = {r.id: store.prompt_text(r.metadata["facet_prompt_sha256"]) for r in rows}
    wrong = [r for r in rows if labeller_value(r.input["preprocessed_text"], prompts[r.id]) != r.expected]
    assert summary["audited_rows"] == len(rows)
    assert 0 < summary["label_disagreements"] == len(wrong) < len(rows) / 5
