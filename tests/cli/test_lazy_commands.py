"""`facetopt --help` lists every command from a static table without importing the commands; the
table says what each command's own help says; a command still loads and runs when used."""

from __future__ import annotations

import json
import subprocess
import sys

from facetopt.cli.commands import SUMMARIES
from tests.cli_commands import all_commands

_LIST_HELP = """
import json, sys
from typer.testing import CliRunner
from facetopt.cli.main import app
result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
loaded = sorted(m for m in sys.modules if m.startswith(("facetopt.services", "facetopt.clients")))
commands = sorted(m for m in sys.modules if m.startswith("facetopt.cli.") and m not in (
    "facetopt.cli.main", "facetopt.cli.commands", "facetopt.cli.shared", "facetopt.cli.shared.usage_errors"))
print(json.dumps({"code": result.exit_code, "output": result.output, "loaded": loaded, "cli": commands}))
"""


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


def test_the_listing_is_each_commands_own_one_line_help():
    root = [c for c in all_commands() if len(c.path) == 1]
    own = {c.path[0]: _first_paragraph(c.command.help) for c in root}
    assert list(own) == list(SUMMARIES)  # every command, in the listed order
    assert own == {name: " ".join(text.split()) for name, text in SUMMARIES.items()}


def test_root_help_lists_every_command_without_importing_one():
    result = subprocess.run([sys.executable, "-c", _LIST_HELP], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert report["loaded"] == [] and report["cli"] == []
    listed = [line.split()[1] for line in report["output"].splitlines() if line.startswith("│ ")]
    for name in (
        "dataset",
        "bootstrap",
        "eval",
        "inspect",
        "compare",
        "report",
        "publish",
        "demo",
        "optimize",
    ):
        assert name in listed, report["output"]


def test_a_command_loads_when_used_and_typos_still_get_typer_usage_errors():
    from typer.testing import CliRunner

    from facetopt.cli.main import app

    runner = CliRunner()
    shown = runner.invoke(app, ["dataset", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "audit" in shown.output and "review" in shown.output
    typo = runner.invoke(app, ["evl"])
    assert typo.exit_code == 2 and "No such command 'evl'. Did you mean 'eval'?" in typo.output
