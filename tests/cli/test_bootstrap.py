"""`facetopt bootstrap` as a user runs it: table and .env line, --json, refusals with exit 1."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from facetopt.cli.bootstrap import bootstrap_command
from facetopt.clients.prompt_file import FacetPrompt, write_new_prompt_file

PROMPT = "What does the user want? Answer none when unclear."


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A stand-in root so `bootstrap` is a subcommand, as in facetopt."""

    app.command("bootstrap")(bootstrap_command)
    return app


def invoke(app: typer.Typer, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["bootstrap", *args], env=env)


def make_run(output_root: Path, run_id: str = "20240101T000000Z", prompt: str = PROMPT) -> Path:
    run = output_root / run_id
    run.mkdir(parents=True)
    messages = [{"role": "user", "content": "Data:\n{{preprocessed_text}}"}]
    write_new_prompt_file(
        run / "facet_prompt.yaml",
        [
            FacetPrompt(
                facet_name="Task", messages=messages, suffix_messages=[{"role": "user", "content": prompt}]
            )
        ],
    )
    return run


def test_prints_facets_hashes_and_the_env_line(app: typer.Typer, output_root: Path) -> None:
    make_run(output_root)
    result = invoke(app, "--output-root", str(output_root))
    assert result.exit_code == 0, result.stderr
    target = output_root / "facet_definitions.yaml"
    assert target.exists()
    out = result.stdout
    assert "Task" in out
    assert hashlib.sha256(PROMPT.encode()).hexdigest()[:12] in out
    assert "new" in out
    assert out.rstrip().splitlines()[-1] == f"FACET_OPTIMIZER_PROMPT={target}"


def test_json_output_is_the_result_document(app: typer.Typer, output_root: Path) -> None:
    run = make_run(output_root)
    result = invoke(app, "--output-root", str(output_root), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["source"] == str(run / "facet_prompt.yaml")
    assert doc["facets"] == [
        {"facet_name": "Task", "prompt_sha256": hashlib.sha256(PROMPT.encode()).hexdigest(), "status": "new"}
    ]
    assert doc["written"] is True and doc["unchanged"] is False
    assert doc["env_line"] == f"FACET_OPTIMIZER_PROMPT={output_root / 'facet_definitions.yaml'}"

    again = json.loads(invoke(app, "--output-root", str(output_root), "--json").stdout)
    assert again["unchanged"] is True and again["written"] is False


def test_a_differing_prompt_file_is_refused_with_exit_1_until_forced(
    app: typer.Typer, output_root: Path
) -> None:
    make_run(output_root)
    target = output_root / "facet_definitions.yaml"
    invoke(app, "--output-root", str(output_root))
    target.write_text(target.read_text().replace("Answer none when unclear.", "Answer none if unsure."))
    edited = target.read_text()

    refused = invoke(app, "--output-root", str(output_root), "--json")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: {target} exists and differs from ")
    assert "hint: pass --force" in refused.stderr
    assert "-What does the user want? Answer none if unsure." in refused.stderr
    assert json.loads(refused.stdout)["error"]["exit_code"] == 1
    assert target.read_text() == edited

    forced = invoke(app, "--output-root", str(output_root), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert "changed" in forced.stdout
    assert "+What does the user want? Answer none when unclear." in forced.stdout
    assert "Answer none when unclear." in target.read_text()


def test_settings_come_from_the_environment(app: typer.Typer, output_root: Path, tmp_path: Path) -> None:
    make_run(output_root)
    custom = tmp_path / "my prompts.yaml"
    env = {"FACET_OPTIMIZER_OUTPUT_ROOT": str(output_root), "FACET_OPTIMIZER_PROMPT": str(custom)}
    result = invoke(app, "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert custom.exists()
    assert json.loads(result.stdout)["env_line"] == f'FACET_OPTIMIZER_PROMPT="{custom}"'


def test_run_dir_and_output_flags(app: typer.Typer, output_root: Path, tmp_path: Path) -> None:
    older = make_run(output_root, "20240101T000000Z", prompt="older prompt")
    make_run(output_root, "20240102T000000Z")
    out = tmp_path / "out.yaml"
    result = invoke(app, "--output-root", str(output_root), "--run-dir", str(older), "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == (older / "facet_prompt.yaml").read_bytes()


def test_no_run_and_a_broken_prompt_file_are_one_line_errors(app: typer.Typer, output_root: Path) -> None:
    missing = invoke(app, "--output-root", str(output_root))
    assert missing.exit_code == 1
    assert (
        missing.stderr.splitlines()[0] == f"error: no run folder with facet_prompt.yaml under {output_root}"
    )

    run = output_root / "20240101T000000Z"
    run.mkdir()
    (run / "facet_prompt.yaml").write_text("schema_version: 1\nfacet_name: task\nno_match_pattern: '(x'\n")
    broken = invoke(app, "--output-root", str(output_root))
    assert broken.exit_code == 1
    assert broken.stderr.splitlines()[0].startswith(f"error: {run / 'facet_prompt.yaml'}:")
    assert broken.stdout == ""


def test_help_documents_every_option(app: typer.Typer) -> None:
    result = invoke(app, "--help")
    assert result.exit_code == 0
    for option in ("--run-dir", "--output", "--force", "--output-root", "--env-file", "--json"):
        assert option in result.stdout
    assert "--as-json" not in result.stdout
