"""`facetopt optimize` and `inspect optimize` fail with one clear error document before any call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app

PROMPTS = Path(__file__).resolve().parents[1] / "fixtures" / "prompts" / "hand_commented.yaml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["optimize", "--facet", "nope"], "facet 'nope' is not in"),
        (["optimize", "--facet", "Issues", "--candidates", "0"], "--candidates must be at least 1"),
        (["optimize", "--facet", "Issues", "--target", "speed"], "unknown compare target 'speed'"),
        (["inspect", "optimize"], "no optimize run under"),
        (["inspect", "optimize", "20990101T000000Z"], "no optimize run '20990101T000000Z'"),
    ],
)
def test_bad_input_is_one_json_error_and_exit_1(tmp_path: Path, args: list[str], message: str):
    prompt = tmp_path / "facet_definitions.yaml"
    shutil.copy(PROMPTS, prompt)
    before = prompt.read_bytes()
    extra = ["--prompt", str(prompt), "--backend", "local"] if args[0] == "optimize" else []
    result = CliRunner().invoke(app, [*args, *extra, "--output-root", str(tmp_path), "--json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert message in error["message"] and error["hint"]
    assert prompt.read_bytes() == before
    assert not (tmp_path / "optimize").exists() or not any((tmp_path / "optimize").iterdir())
