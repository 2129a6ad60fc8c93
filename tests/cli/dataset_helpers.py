"""Helpers for running `facetopt dataset create` in tests."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML
from typer.testing import CliRunner

from facetopt.cli.main import app

SMALL = ["--positive-limit", "6", "--negative-limit", "6"]


def run_cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def create_args(output_root: Path, *extra: str) -> list[str]:
    return [
        "dataset",
        "create",
        "--target-project",
        "Facet optimizer",
        "--dataset",
        "Facet groundtruth",
        "--output-root",
        str(output_root),
        *extra,
    ]


def json_out(result) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def rows_of(flags: list[str], dataset: str) -> dict:
    """The dataset's rows by id, read through the backend `flags` name (--backend, --output-root and
    --target-project, in that order)."""
    from facetopt.services.backends import open_backend
    from facetopt.settings import load_settings

    settings = load_settings(None, backend=flags[1], output_root=Path(flags[3]))
    return {r.id: r for r in open_backend(settings).dataset_rows(flags[5], dataset)}


def ok(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json_out(result)


def decide_two(flags: list[str], dataset: str, review: Path) -> dict[str, str]:
    """Export a review file, decide two rows in it by hand, apply it: {row id: decided label}."""
    ok("dataset", "review", "export", str(review), *flags, "--dataset", dataset, "--only", "all")
    yaml = YAML()
    document = yaml.load(review.read_text())
    entries = [e for e in document["rows"] if e["second_opinion"]][:2]
    entries[0]["decision"], entries[0]["new_value"] = "new", "A value a person wrote"
    entries[1]["decision"], entries[1]["new_value"] = "new", "None."
    with review.open("w") as handle:
        yaml.dump(document, handle)
    applied = ok("dataset", "review", "apply", str(review), *flags)
    assert applied["verified"] == 2
    return {entries[0]["id"]: "A value a person wrote", entries[1]["id"]: "None."}
