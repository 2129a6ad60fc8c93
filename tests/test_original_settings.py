"""The original scripts' variable names keep their meaning (reference: seed-compat.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facetopt import settings_names
from facetopt.clients.llm.endpoints import resolve_facet_model, resolve_labeller
from facetopt.settings import load_settings


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(settings_names, "_WARNED", set())
    monkeypatch.chdir(tmp_path)


def test_concurrency_names_and_project_fallbacks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FACET_OPTIMIZER_CONCURRENCY", "7")
    monkeypatch.setenv("FACET_OPTIMIZER_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("FACET_OPTIMIZER_PROJECT", "Legacy")
    monkeypatch.setenv("FACET_OPTIMIZER_TRIAL_COUNT", "2")
    monkeypatch.setenv("FACET_OPTIMIZER_MAX_ROWS", "0")
    s = load_settings()
    assert (s.ground_truth_concurrency, s.concurrency, s.trials, s.max_rows) == (7, 3, 2, None)
    assert s.target_project == "Legacy" and s.eval_project == "Legacy" and s.eval_dataset_project == "Legacy"
    monkeypatch.setenv("FACET_OPTIMIZER_EVAL_PROJECT", "Evals")
    s = load_settings(target_project="Flag")
    assert (s.target_project, s.eval_project, s.eval_dataset_project) == ("Flag", "Evals", "Evals")
    monkeypatch.delenv("FACET_OPTIMIZER_PROJECT")
    monkeypatch.delenv("FACET_OPTIMIZER_EVAL_PROJECT")
    assert load_settings().eval_project == "Facet Optimizer"


def test_empty_values_of_a_copied_env_example_mean_not_set(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text(
        "FACET_OPTIMIZER_MAX_ROWS=\nFACET_OPTIMIZER_TARGET_PROJECT=\nFACET_OPTIMIZER_FACET_FILTER=Issues, TASK\n"
    )
    s = load_settings(env)
    assert s.max_rows is None and s.target_project is None and s.facet_filter_list == ["issues", "task"]


def test_the_labeller_follows_the_original_chain(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FACET_OPTIMIZER_LABEL_API_BASE", "http://127.0.0.1:9/v1")
    labeller = resolve_labeller(load_settings())
    assert not labeller.simulated and labeller.base_url == "http://127.0.0.1:9/v1"  # no key: still real
    monkeypatch.delenv("FACET_OPTIMIZER_LABEL_API_BASE")
    monkeypatch.setenv("FACET_OPTIMIZER_JUDGE_API_BASE", "http://127.0.0.1:8/v1")
    monkeypatch.setenv("FACET_OPTIMIZER_JUDGE_API_KEY", "sk-judge-123456")
    labeller = resolve_labeller(load_settings())
    assert labeller.base_url == "http://127.0.0.1:8/v1" and labeller.secret() == "sk-judge-123456"
    monkeypatch.setenv("BRAINTRUST_PROXY_API_BASE", "http://127.0.0.1:7/v1")
    monkeypatch.setenv("BRAINTRUST_API_KEY", "sk-bt-1234567")
    assert resolve_facet_model(load_settings()).base_url == "http://127.0.0.1:7/v1"


def test_unknown_names_get_one_warning_with_the_closest_known_name(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("FACET_OPTIMIZER_TRIAL_COUNTS", "2")
    (tmp_path / ".env").write_text("FACET_OPTIMIZER_MAX_CONCURENCY=4\nFACET_OPTIMIZER_FACET_SLUG=x\n")
    warned: list[str] = []
    load_settings(warn=warned.append)
    load_settings(warn=warned.append)
    assert sorted(warned) == [
        "unknown setting FACET_OPTIMIZER_MAX_CONCURENCY (in .env) is ignored; "
        "did you mean FACET_OPTIMIZER_MAX_CONCURRENCY?",
        "unknown setting FACET_OPTIMIZER_TRIAL_COUNTS (in the environment) is ignored; "
        "did you mean FACET_OPTIMIZER_TRIAL_COUNT?",
    ]


def test_env_example_lists_every_original_name_and_loads_cleanly():
    repo = Path(__file__).parents[1]
    from dotenv import dotenv_values

    listed = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (repo / ".env.example").read_text(), re.M)
    original = dotenv_values(repo / "tests" / "fixtures" / "original.env")
    assert set(original) <= set(listed)
    warned: list[str] = []
    s = load_settings(repo / ".env.example", warn=warned.append)
    assert warned == []
    assert (s.ground_truth_concurrency, s.concurrency, s.trials, s.max_tokens) == (128, 16, 1, 20000)
    assert s.eval_project == "Facet Optimizer" and s.max_rows is None


@pytest.mark.parametrize(
    "command",
    [
        ["optimize", "--facet", "issues"],
        ["inspect", "optimize"],
        ["publish", "--dry-run"],
        ["eval", "--max-rows", "1"],
        ["inspect", "experiments"],
    ],
)
def test_every_command_warns_about_an_unknown_setting_name(command: list[str], monkeypatch, tmp_path: Path):
    from typer.testing import CliRunner

    from facetopt.cli.main import app

    monkeypatch.setenv("FACET_OPTIMIZER_TRIAL_COUNTS", "2")
    result = CliRunner().invoke(app, [*command, "--output-root", str(tmp_path / "state")])
    assert "unknown setting FACET_OPTIMIZER_TRIAL_COUNTS" in result.stderr, result.stderr
