"""`--help` explains every command and option, and stays instant: no heavy client library loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli_commands import CliCommand, all_commands
from tests.heavy_libraries import HEAVY

COMMANDS = all_commands()

_RENDER_EVERY_HELP = """
import json, sys
from typer.testing import CliRunner
from facetopt.cli.main import app
paths = json.loads(sys.argv[1])
failed = {}
for path in paths:
    result = CliRunner().invoke(app, [*path, "--help"])
    if result.exit_code != 0 or "Usage" not in result.output:
        failed[" ".join(path)] = result.output[-500:]
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"failed": failed, "heavy": heavy}))
"""


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(("facetopt", *c.path)))
def test_every_command_has_help_text(command: CliCommand):
    assert (command.command.help or "").strip(), f"`{command.name}` has no help text (docstring)"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(("facetopt", *c.path)))
def test_every_option_and_argument_has_help_text(command: CliCommand):
    undocumented = [p.name for p in command.command.params if not (getattr(p, "help", None) or "").strip()]
    assert not undocumented, f"`{command.name}`: no help text for {undocumented}"


@pytest.mark.slow
def test_help_for_every_command_renders_without_loading_heavy_libraries():
    """In a fresh interpreter: import the CLI and render every command's --help."""
    paths = [list(c.path) for c in COMMANDS]
    result = subprocess.run(
        [sys.executable, "-c", _RENDER_EVERY_HELP, json.dumps(paths), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["heavy"] == [], f"--help imported {report['heavy']}; import them inside the functions"


@pytest.mark.slow
def test_facetopt_help_exits_0_in_a_fresh_interpreter():
    # Its speed is what the heavy-import test above guards; a wall-clock bound here would only
    # measure how busy the machine is.
    result = subprocess.run(
        [sys.executable, "-m", "facetopt.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "dataset" in result.stdout and "compare" in result.stdout and "publish" in result.stdout
