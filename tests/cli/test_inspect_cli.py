"""`facetopt inspect ...` as a user runs it: tables, --json documents, errors with hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from facetopt.cli import inspect as inspect_cli
from tests.services.experiment_fixtures import baseline_rows, dataset_row, eval_row, record, write_store

LONG_OUTPUT = "The assistant answered the question about the refund policy instead of extracting issues " * 6


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A stand-in root so `inspect` is a sub-app, as in facetopt."""

    app.add_typer(inspect_cli.app, name="inspect")
    return app


@pytest.fixture
def store(output_root: Path) -> Path:
    rows = [*baseline_rows(), eval_row("i9", "none", LONG_OUTPUT, factuality=0.2)]
    write_store(
        output_root,
        [
            (record("0f3a9c1e-run-1", "2024-01-01T00:00:00Z", name="base"), rows),
            (record("7b21d4aa-run-2", "2024-01-02T00:00:00Z", name="edit"), rows[:4]),
        ],
        datasets={("proj", "demo"): [dataset_row("r1", "issues", "none", "train")]},
    )
    return output_root


def invoke(app: typer.Typer, root: Path, *args: str, columns: int = 200):
    env = {
        "FACET_OPTIMIZER_OUTPUT_ROOT": str(root),
        "FACET_OPTIMIZER_DATASET": "demo",
        "COLUMNS": str(columns),
    }
    return CliRunner().invoke(app, ["inspect", *args], env=env)


def test_metrics_table_and_json(app: typer.Typer, store: Path):
    shown = invoke(app, store, "metrics", "base", "--split", "validation")
    assert shown.exit_code == 0, shown.output
    assert "base (0f3a9c1e-run-1)" in shown.stdout
    issues_line = next(line for line in shown.stdout.splitlines() if line.startswith("issues"))
    # n=9, TP 3, FP 3, TN 2, FN 1, match 5/9
    assert issues_line.split()[:7] == ["issues", "9", "3", "3", "2", "1", "0.556"]
    assert "backend: local" in shown.stderr  # the backend choice is announced on stderr
    document = json.loads(invoke(app, store, "metrics", "--json").stdout)
    assert document["experiment"]["experiment_id"] == "7b21d4aa-run-2"  # latest
    assert [m["facet_name"] for m in document["metrics"]] == ["issues", "overall"]
    assert document["metrics"][0]["fn"] == 1


def test_failures_show_whole_wrapped_output_as_blocks_and_whole_in_json(app: typer.Typer, store: Path):
    shown = invoke(app, store, "failures", "base", "--facet", "issues", "--kind", "fp", columns=120)
    assert shown.exit_code == 0, shown.output
    assert "i7" in shown.stdout and "https://bt.example/trace/i7" in shown.stdout
    assert "i4" not in shown.stdout  # a false negative
    assert max(len(line) for line in shown.stdout.splitlines()) <= 120
    assert "…" not in shown.stdout  # the long output is wrapped, never cut
    assert " ".join(LONG_OUTPUT.split()) in " ".join(shown.stdout.split())
    document = json.loads(invoke(app, store, "failures", "base", "--facet", "issues", "--json").stdout)
    long_row = next(f for f in document["failures"] if f["id"] == "i9")
    assert long_row["output"] == LONG_OUTPUT
    assert document["counts"] == {"fp": 3, "fn": 1, "label": 0, "error": 0}
    assert (document["rows"], document["failure_count"], document["listed"]) == (9, 4, 4)
    assert document["experiment_id"] == document["experiment"]["experiment_id"]
    assert {"trace_text", "permalink_note", "split", "kind", "expected", "output"} <= set(long_row)


def test_failures_limit_says_how_many_more(app: typer.Typer, store: Path):
    shown = invoke(app, store, "failures", "base", "--facet", "issues", "--limit", "2")
    assert "2 more: raise --limit" in shown.stdout


def test_failures_needs_a_facet(app: typer.Typer, store: Path):
    shown = invoke(app, store, "failures")
    assert shown.exit_code == 2
    assert "--facet" in shown.output


def test_experiments_newest_first(app: typer.Typer, store: Path):
    shown = invoke(app, store, "experiments")
    assert shown.exit_code == 0, shown.output
    # the id's first 8 characters: an id prefix, accepted wherever an experiment is named
    assert shown.stdout.index("7b21d4aa") < shown.stdout.index("0f3a9c1e")
    document = json.loads(invoke(app, store, "experiments", "--json").stdout)
    assert [e["experiment_name"] for e in document["experiments"]] == ["edit", "base"]


def test_experiments_without_a_store(app: typer.Typer, output_root: Path):
    shown = invoke(app, output_root, "experiments")
    assert shown.exit_code == 0
    assert "no experiments yet" in shown.stdout


def test_dataset_balance(app: typer.Typer, store: Path):
    shown = invoke(app, store, "dataset", "--target-project", "proj")
    assert shown.exit_code == 0, shown.output
    assert "proj / demo (local)" in shown.stdout
    missing = invoke(app, store, "dataset")
    assert missing.exit_code == 1
    assert "error: --target-project is required" in missing.stderr


def test_sql_table_and_json(app: typer.Typer, store: Path):
    query = (
        "SELECT input.metadata.dataset_row_id AS id, scores.Factuality AS f FROM experiment('base') "
        "WHERE span_attributes.name = 'Factuality' AND scores.Factuality < 0.3 ORDER BY id"
    )
    shown = invoke(app, store, "sql", query)
    assert shown.exit_code == 0, shown.output
    assert "4 rows (local)" in shown.stdout
    document = json.loads(invoke(app, store, "sql", query, "--json").stdout)
    assert [row["id"] for row in document["rows"]] == ["i4", "i7", "i9", "s3"]
    assert document["columns"] == ["id", "f"]


def test_unknown_experiment_error_and_json_envelope(app: typer.Typer, store: Path):
    shown = invoke(app, store, "metrics", "edti")
    assert shown.exit_code == 1
    assert "error: no experiment named 'edti' in the registry" in shown.stderr
    assert "hint: did you mean 'edit'?" in shown.stderr
    as_json = invoke(app, store, "metrics", "edti", "--json")
    assert json.loads(as_json.stdout)["error"]["hint"].startswith("did you mean 'edit'?")


def test_empty_registry_and_sql_errors(app: typer.Typer, output_root: Path, store: Path):
    empty = invoke(app, output_root / "elsewhere", "failures", "--facet", "issues")
    assert empty.exit_code == 1
    assert "registry is empty" in empty.stderr
    bad = invoke(app, store, "sql", "SELECT missing_column FROM experiment('base')")
    assert bad.exit_code == 1
    assert "error: SQL error:" in bad.stderr and "missing_column" in bad.stderr


def test_failures_on_validation_warn_once_on_stderr_and_in_json(app: typer.Typer, store: Path):
    shown = invoke(app, store, "failures", "base", "--facet", "issues")
    assert shown.exit_code == 0, shown.output
    assert " ".join(shown.stderr.split()).count("spends some of validation's honesty") == 1  # wrapped
    assert "honesty" not in shown.stdout
    document = json.loads(invoke(app, store, "failures", "base", "--facet", "issues", "--json").stdout)
    assert len(document["warnings"]) == 1 and "read failure traces on train" in document["warnings"][0]
    train = json.loads(
        invoke(app, store, "failures", "base", "--facet", "issues", "--split", "train", "--json").stdout
    )
    assert train["warnings"] == []


def test_experiments_show_each_run_status(app: typer.Typer, output_root: Path):
    failed = record("run-failed", "2024-01-03T00:00:00Z", name="broken").model_copy(
        update={"status": "failed", "status_cause": "every row failed (9 rows)"}
    )
    write_store(output_root, [(record("run-ok", "2024-01-01T00:00:00Z", name="fine"), None), (failed, None)])
    shown = invoke(app, output_root, "experiments")
    assert shown.exit_code == 0, shown.output
    statuses = {line.split()[2]: line.split() for line in shown.stdout.splitlines() if "run-" in line}
    assert "failed" in statuses["broken"] and "complete" in statuses["fine"]
    assert "1 run(s) not complete" in shown.stdout
    document = json.loads(invoke(app, output_root, "experiments", "--json").stdout)
    by_name = {e["experiment_name"]: e for e in document["experiments"]}
    assert by_name["broken"]["status_cause"] == "every row failed (9 rows)"


RUN_IDS = [
    "3f0c2a9e-5b1d-4c7e-9a8f-0d6e1b2c3a4f",
    "8d4e6f10-2a3b-4c5d-8e9f-a0b1c2d3e4f5",
    "05a7c3d1-9e8f-4a2b-b1c0-d9e8f7a6b5c4",
]
FACET_HASHES = {
    "issues": "1a94089bb09c" + "0" * 52,
    "sentiment": "1595d99b" + "1" * 56,
    "task": "f5f3e117" + "2" * 56,
}


@pytest.fixture
def labelled(output_root: Path) -> Path:
    """Three runs with the same default experiment name: the oldest superseded, the two others told
    apart by an `eval --name` label, the newest partial."""
    old = record(RUN_IDS[2], "2023-12-31T00:00:00Z", prompt_hashes=FACET_HASHES, rows=40)
    base = record(RUN_IDS[0], "2024-01-01T00:00:00Z", prompt_hashes=FACET_HASHES, rows=40)
    edit = record(RUN_IDS[1], "2024-01-02T00:00:00Z", prompt_hashes={**FACET_HASHES, "issues": "b2" * 32})
    rows = baseline_rows()
    write_store(
        output_root,
        [
            (old.model_copy(update={"superseded_by": RUN_IDS[0]}), rows),
            (base.model_copy(update={"label": "baseline"}), rows),
            (edit.model_copy(update={"status": "partial", "label": "boundary-v1"}), rows[:4]),
        ],
    )
    return output_root


def test_experiments_at_80_columns_keep_name_id_status_and_prompt_hashes(app: typer.Typer, labelled: Path):
    shown = invoke(app, labelled, "experiments", columns=80)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("name"))
    assert header.split()[:4] == ["name", "id", "status", "split"] and "prompts" in header
    first = next(i for i, line in enumerate(lines) if line.startswith("boundary-v1"))
    second = next(i for i, line in enumerate(lines) if line.startswith("baseline"))
    third = next(i for i, line in enumerate(lines) if line.startswith("facet-optimizer-brain-facet-1"))
    row = ["validation", "issues"]
    assert lines[first].split()[:6] == ["boundary-v1", "8d4e6f10", "partial", *row, "b2b2b2b2"]
    assert lines[second].split()[:6] == ["baseline", "3f0c2a9e", "complete", *row, "1a94089b"]
    assert lines[third].split()[:6] == [
        "facet-optimizer-brain-facet-1",
        "05a7c3d1",
        "superseded",
        *row,
        "1a94089b",
    ]
    # one facet's hash a line, under the run's own
    assert [line.split()[-2:] for line in lines[second + 1 : second + 3]] == [
        ["sentiment", "1595d99b"],
        ["task", "f5f3e117"],
    ]
    assert "left out at 80 columns: created, rows, errors, model, dataset, backend, ran by" in " ".join(lines)
    document = json.loads(invoke(app, labelled, "experiments", "--json").stdout)
    assert [(e["label"], e["experiment_id"]) for e in document["experiments"]] == [
        ("boundary-v1", RUN_IDS[1]),
        ("baseline", RUN_IDS[0]),
        (None, RUN_IDS[2]),
    ]


def test_a_label_or_a_short_id_names_an_experiment(app: typer.Typer, labelled: Path):
    for reference in ("baseline", RUN_IDS[0][:8]):
        document = json.loads(invoke(app, labelled, "metrics", reference, "--json").stdout)
        assert document["experiment"]["experiment_id"] == RUN_IDS[0], reference
    shown = invoke(app, labelled, "metrics", "baseline", columns=200)
    assert f"baseline: facet-optimizer-brain-facet-1 ({RUN_IDS[0]})" in shown.stdout
    missing = invoke(app, labelled, "metrics", "baselin")
    assert missing.exit_code == 1 and "did you mean 'baseline'?" in missing.stderr
