"""Helpers for running `facetopt dataset create` in tests."""

from __future__ import annotations

import json
from pathlib import Path

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
