"""`facetopt optimize` runs that must not mislead (issue 24): the budget floor it quotes is the floor
it enforces, the proposer is never shown a row screening scores, a run whose proposals all fail ends
`failed` (exit 1, the cause) and an interrupted one `interrupted`, and `inspect optimize` says which.
Local backend, simulated facet model; the proposer is the simulation or a loopback fake."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from tests.fakes.openai_server import Failure, FakeOpenAIServer

SCOPE = ["--backend", "local", "--target-project", "tp", "--dataset", "ds"]
PROPOSER_KEY = "sk-proposer-test"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled local dataset and its prompt file, made once (simulated labeller)."""
    root = tmp_path_factory.mktemp("optimize") / "state"
    runner = CliRunner()
    limits = ["--positive-limit", "30", "--negative-limit", "30"]
    created = runner.invoke(app, ["dataset", "create", *SCOPE, *limits, "--output-root", str(root), "--json"])
    assert created.exit_code == 0, created.output
    assert runner.invoke(app, ["bootstrap", "--output-root", str(root)]).exit_code == 0
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "state"
    shutil.copytree(built, copy)
    return copy


def optimize(root: Path, *args: str, env: dict[str, str] | None = None):
    argv = ["optimize", "--facet", "issues", *SCOPE, "--output-root", str(root), *args]
    return CliRunner().invoke(app, argv, env=env)


def inspect(root: Path, *args: str):
    return CliRunner().invoke(app, ["inspect", "optimize", "--output-root", str(root), *args])


def test_the_budget_floor_quoted_is_the_floor_enforced(root: Path):
    refused = optimize(root, "--budget", "5", "--rounds", "1", "--candidates", "1", "--json")
    assert refused.exit_code == 1
    floor = int(re.search(r"give at least --budget (\d+)", json.loads(refused.stdout)["error"]["hint"])[1])
    below = optimize(root, "--budget", str(floor - 1), "--rounds", "1", "--candidates", "1", "--json")
    assert below.exit_code == 1 and f"give at least --budget {floor}," in below.stdout
    at = optimize(root, "--budget", str(floor), "--rounds", "1", "--candidates", "1", "--json")
    assert at.exit_code == 0, at.output
    report = json.loads(at.stdout)
    assert report["status"] == "complete" and report["calls"] <= floor
    assert len(report["candidates"]) == 1 and report["candidates"][0]["status"] != "proposal_failed"


@pytest.mark.slow  # the winner's validation evals run
def test_the_proposer_never_sees_a_row_that_screening_scores(root: Path):
    result = optimize(root, "--rounds", "2", "--candidates", "2", "--budget", "400", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    screened = set(report["minibatch_ids"])
    assert screened and report["candidates"]
    shown = [set(c["failure_ids"]) for c in report["candidates"]]
    assert any(shown), "no candidate was shown failures"
    assert all(not (ids & screened) for ids in shown)
    # only candidates scored on train are finalists, and the winner has the best train score
    for c in report["candidates"]:
        assert (c["status"] in ("finalist", "winner")) == (c["train_score"] is not None)
    scored = [c for c in report["candidates"] if c["train_score"] is not None]
    if report["winner"]:
        best = max(scored, key=lambda c: c["train_score"])
        assert report["winner"] == best["candidate_id"]
        assert best["train_score"] > report["baseline_train_score"]


@pytest.mark.parametrize(
    ("server", "cause"),
    [
        ({"reply": lambda body: "I would rather not change this prompt."}, "no proposal could be parsed (2 of 2)"),
        ({"fail_when": lambda body: Failure(status=400, message="model not found")}, "every proposer call failed (2 of 2)"),
    ],
)  # fmt: skip
def test_a_run_whose_proposals_all_fail_ends_failed_with_its_cause(root: Path, server: dict, cause: str):
    with FakeOpenAIServer(api_key=PROPOSER_KEY, **server) as proposer:
        env = {"FACET_OPTIMIZER_PROPOSER_API_KEY": PROPOSER_KEY}
        result = optimize(
            root, "--rounds", "1", "--candidates", "2", "--proposer-api-base", proposer.url, "--json", env=env
        )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "failed" and report["cause"].startswith(cause)
    assert f"error: optimize failed: {cause}" in result.stderr
    shown = inspect(root)
    assert shown.exit_code == 0 and f"FAILED: {cause}" in shown.stdout
    assert "no candidate beat" not in shown.stdout


def test_an_interrupted_run_is_recorded_as_interrupted(root: Path, monkeypatch: pytest.MonkeyPatch):
    from facetopt.services.optimize.search import Search

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Search, "propose", stopped)
    result = optimize(root, "--rounds", "1", "--candidates", "1")
    assert result.exit_code == 130
    shown = inspect(root, "--json")
    assert json.loads(shown.stdout)["status"] == "interrupted"
    assert "INTERRUPTED: stopped by Ctrl-C" in inspect(root).stdout
