"""`facetopt optimize` offline on the bundled sample, from the shared demo run's state.

One optimiser run (the demo's step 11, in-process) answers the issue's test: a KEEP for the
weakest facet with exactly one validation eval of its own, a rejected copy-of-training candidate
with its reason, the spend within --budget; a second run with a tight budget spends no validation
eval it cannot afford."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import load_prompt_file
from facetopt.errors import InputError
from facetopt.services.demo import (
    DEMO_DATASET,
    DEMO_MODEL,
    DEMO_PROJECT,
    SCOPE,
    PromptChange,
    without_user_settings,
)
from facetopt.services.demo_optimize import DEMO_BUDGET, optimize_step, revert_unproven_edit
from facetopt.services.optimize.model import OptimizeOptions
from facetopt.services.optimize.record import find_run, read_report
from facetopt.services.optimize.run import run_optimize
from facetopt.services.progress import SilentProgress
from facetopt.settings import SIMULATED_BASE_URL, Settings, load_settings
from tests.e2e.helpers import DemoRun

pytestmark = pytest.mark.e2e


class Steps:
    def __init__(self) -> None:
        self.titles: list[str] = []
        self.shown: list[tuple[str, Any]] = []

    def step(self, title: str, argv: list[str]) -> None:
        self.titles.append(title)

    def show(self, kind: str, document: Any) -> None:
        self.shown.append((kind, document))


def _copy(demo_run: DemoRun, tmp_path: Path) -> tuple[Path, Settings]:
    root = tmp_path / "root"
    shutil.copytree(demo_run.output_root, root)
    with without_user_settings():
        settings = load_settings(
            root / "demo.env",
            backend="local",
            output_root=root,
            target_project=DEMO_PROJECT,
            dataset=DEMO_DATASET,
            ground_truth_api_base=SIMULATED_BASE_URL,
            api_base=SIMULATED_BASE_URL,
            judge_api_base=SIMULATED_BASE_URL,
            proposer_api_base=SIMULATED_BASE_URL,
            model=DEMO_MODEL,
            prompt=root / "facet_definitions.yaml",
        )
    return root, settings


def _validation_runs(settings: Settings) -> list[str]:
    with LocalStore(settings.store_path, read_only=True) as store:
        return [r.experiment_id for r in store.experiments() if r.split == "validation"]


def test_optimize_keeps_a_winner_after_one_validation_eval_and_rejects_a_copy(
    demo_run: DemoRun, tmp_path: Path
):
    root, settings = _copy(demo_run, tmp_path)
    change = PromptChange.model_validate(demo_run.summary["prompt_change"])
    comments_before = [
        line for line in (root / "facet_definitions.yaml").read_text().splitlines() if "#" in line
    ]
    before = _validation_runs(settings)
    steps = Steps()
    with without_user_settings():
        summary = optimize_step(
            settings, steps, change, demo_run.summary["facet_verdict"], SCOPE, print, print
        )
    report = read_report(find_run(root, summary.run_id))

    assert summary.reverted_manual_edit  # the demo's edit was INCONCLUSIVE: back to the captured prompt
    assert report.baseline_sha256 == change.before_sha256
    assert report.verdict == "KEEP" and report.rule == "target_above_zero"
    assert report.validation_evals_run == 1
    after = _validation_runs(settings)
    assert len(after) == len(before) + 1 and report.candidate_experiment in after
    assert report.baseline_experiment == demo_run.summary["baseline_experiment"]

    copies = [c for c in report.candidates if "copies_training_data" in c.guard_rules]
    assert copies and all(c.minibatch_score is None for c in copies)  # rejected before any scoring
    assert "8+ words of a training row" in copies[0].guard_reasons[0]
    assert copies[0].candidate_id in summary.rejected

    assert report.budget == DEMO_BUDGET and report.calls <= DEMO_BUDGET
    assert sum(p.calls for p in report.spend) == report.calls
    validate = next(p for p in report.spend if p.phase == "validate")
    assert validate.calls == report.validation_rows * 2 and validate.evals == [report.candidate_experiment]

    winner = next(c for c in report.candidates if c.candidate_id == report.winner)
    assert winner.status == "winner" and (winner.train_delta or 0) > 0 and winner.hypothesis
    document = load_prompt_file(root / "facet_definitions.yaml")  # --apply and KEEP: the file changed
    assert report.applied and document.facet(report.facet).prompt_sha256 == report.winner_sha256
    comments_after = [
        line for line in (root / "facet_definitions.yaml").read_text().splitlines() if "#" in line
    ]
    assert comments_after == comments_before
    assert (Path(report.run_dir) / "candidate.yaml").is_file()
    assert "+" + winner.prompt_text.splitlines()[-1] in (Path(report.run_dir) / "candidate.diff").read_text()

    shown = CliRunner().invoke(app, ["inspect", "optimize", "--output-root", str(root), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["run_id"] == report.run_id


def test_a_tight_budget_stops_proposing_and_keeps_the_validation_reserve(demo_run: DemoRun, tmp_path: Path):
    root, settings = _copy(demo_run, tmp_path)
    change = PromptChange.model_validate(demo_run.summary["prompt_change"])
    revert_unproven_edit(settings, change, "INCONCLUSIVE")
    with pytest.raises(InputError, match="--budget 100 cannot cover"):
        run_optimize(settings, OptimizeOptions(facet="issues", budget=100), SilentProgress(), print, print)
    budget = 300  # the baseline on train (143 calls) and the validation reserve (80) leave room for one round
    with without_user_settings():
        report = run_optimize(
            settings,
            OptimizeOptions(facet="issues", budget=budget, minibatch=20),
            SilentProgress(),
            print,
            print,
        )
    assert report.stopped and "budget" in report.stopped
    assert report.calls <= budget
    spent = {p.phase: p.calls for p in report.spend}
    assert spent["propose"] < 12  # fewer than K x R proposals
    if report.winner is None:
        assert spent["validate"] == 0 and report.validation_evals_run == 0
    else:
        assert report.validation_evals_run == 1
