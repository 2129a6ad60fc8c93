"""What the demo and the AGENTS.md workflow print reads whole at 80 columns and when piped: tables
drop columns (and say so) instead of cutting cells, failures are blocks, the prompt diff is a real
unified diff (a line past the width continues at column 0), and no cell is cut to an ellipsis.
tests/e2e/test_output_60_columns.py holds the same checks at 60 columns."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from facetopt.cli.dataset import render_create
from facetopt.cli.eval import render_eval
from facetopt.clients.local.store import LocalStore
from facetopt.domain.dataset import DatasetCreateSummary
from facetopt.services.demo.loop import DEMO_DATASET, DEMO_PROJECT
from facetopt.services.eval.record import EvalSummary
from tests.e2e.helpers import DemoRun, facetopt_env, run_facetopt

ELLIPSIS = "…"


def at_80(demo_run: DemoRun, *args: str):
    """`facetopt <args>` piped (not a terminal) with COLUMNS=80, against the demo's state."""
    named = (
        ["--target-project", DEMO_PROJECT, "--dataset", DEMO_DATASET]
        if args[:2] != ("inspect", "experiments")
        else []
    )
    where = [
        *named,
        "--backend",
        "local",
        "--output-root",
        str(demo_run.output_root),
    ]
    result = run_facetopt([*args, *where], demo_run.cwd, facetopt_env(COLUMNS="80"))
    assert result.returncode == 0, result.explain()
    return result


def rendered(render, document) -> str:
    buffer = io.StringIO()
    render(Console(file=buffer, width=80, force_terminal=False), document)
    return buffer.getvalue()


def assert_reads_at_80(text: str) -> None:
    cut = [line for line in text.splitlines() if ELLIPSIS in line]
    assert cut == [], "\n".join(cut)


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "failures", "--facet", "issues", "--split", "validation", "--limit", "0"),
        ("inspect", "metrics", "latest"),
        ("inspect", "experiments"),
        ("inspect", "dataset"),
        ("compare", "previous", "latest"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_workflow_commands_cut_no_cell_at_80_columns_piped(demo_run: DemoRun, args):
    assert_reads_at_80(at_80(demo_run, *args).stdout)


def test_dataset_and_eval_tables_of_the_demo_cut_no_cell_at_80_columns(demo_run: DemoRun):
    dataset = DatasetCreateSummary.model_validate_json(
        (Path(demo_run.summary["run_dir"]) / "summary.json").read_text()
    )
    text = rendered(render_create, dataset)
    assert_reads_at_80(text)
    assert f"labels for {dataset.label_calls} calls" in text
    for path in sorted((demo_run.output_root / "evals").glob("*/summary.json")):
        summary = EvalSummary.model_validate_json(path.read_text())
        text = rendered(render_eval, summary)
        assert_reads_at_80(text)
        assert all(header in text for header in ("specificity", "precision", "Factuality"))
        assert all(len(line) <= 80 for line in text.splitlines())


def test_label_counts_are_in_one_unit_and_add_up(demo_run: DemoRun):
    dataset = json.loads((Path(demo_run.summary["run_dir"]) / "summary.json").read_text())
    assert dataset["label_calls"] == dataset["counts"]["selected_calls"]
    assert (
        dataset["label_calls"]
        == dataset["labels_from_cache"] + dataset["labels_paid"] + dataset["labels_failed"]
    )
    assert dataset["label_requests_paid"] <= dataset["labels_paid"]


def test_failures_are_blocks_with_whole_ids_and_whole_texts(demo_run: DemoRun):
    text = at_80(
        demo_run, "inspect", "failures", "--facet", "issues", "--split", "validation", "--limit", "0"
    ).stdout
    report = json.loads(
        at_80(
            demo_run,
            "inspect",
            "failures",
            "--facet",
            "issues",
            "--split",
            "validation",
            "--limit",
            "0",
            "--json",
        ).stdout
    )
    flat = " ".join(text.split())
    for failure in report["failures"]:
        assert f"id: {failure['id']}" in text  # on one line, never folded
        assert " ".join(failure["expected"].split()) in flat
        assert " ".join((failure["output"] or "").split()) in flat


def test_compare_prompt_diff_is_a_unified_diff_one_line_per_line(demo_run: DemoRun):
    text = at_80(demo_run, "compare", "previous", "latest").stdout
    change = demo_run.summary["prompt_change"]
    with LocalStore(demo_run.output_root / "store.duckdb", read_only=True) as store:
        before = store.prompt_text(change["before_sha256"]).splitlines()
        after = store.prompt_text(change["after_sha256"]).splitlines()
    start = text.index(f"--- baseline {change['before_sha256'][:12]}")
    diff: list[str] = []
    for line in text[start:].splitlines():  # a line past the width continues at column 0
        if diff and line[:1] not in ("+", "-", " ", "@", "") and not line.startswith("prompt "):
            diff[-1] += " " + line
        else:
            diff.append(line)
    assert diff[1] == f"+++ candidate {change['after_sha256'][:12]}"
    body = [line for line in diff[2:] if line[:1] in "+- @"]
    body = body[: next((i for i, line in enumerate(body) if line.startswith("prompt ")), len(body))]
    assert any(line.startswith("+") for line in body)
    for line in body:
        if line.startswith("@@"):
            continue
        source = {"-": before, "+": after, " ": before}[line[0]]
        assert line[1:] in source, f"not a whole line of the prompt: {line!r}"
