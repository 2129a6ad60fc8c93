"""`facetopt demo --optimize`: after the manual loop, the optimiser on the weakest facet, offline.

The manual edit is kept only on KEEP (the guardrails of AGENTS.md); otherwise it is reverted
first, so the optimiser starts from the captured prompt, whose validation eval the demo already ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from facetopt.services.demo.steps import DemoSteps, PromptChange
from facetopt.settings import SIMULATED_BASE_URL, Settings

# Enough for K = 4 candidates over R = 3 rounds on the bundled sample, the final eval reserved.
DEMO_BUDGET = 600


class DemoOptimize(BaseModel):
    run_id: str
    run_dir: str
    facet: str
    reverted_manual_edit: bool
    winner: str | None = None
    verdict: str | None = None
    applied: bool = False
    calls: int = 0
    budget: int = DEMO_BUDGET
    cost_usd: float = 0.0  # estimated: what the same calls would cost at the price table's prices
    validation_evals_run: int = 0
    rejected: dict[str, str] = Field(default_factory=dict)  # candidate id -> the guard's first reason


def revert_unproven_edit(settings: Settings, change: PromptChange, verdict: str) -> bool:
    """Put the captured prompt back unless the manual edit got a KEEP; True when reverted."""
    from facetopt.clients.local.store import LocalStore
    from facetopt.clients.prompt_file import load_prompt_file, save_prompt_file

    if verdict == "KEEP":
        return False
    with LocalStore(settings.store_path, read_only=True) as store:
        before = store.prompt_text(change.before_sha256)
    if before is None:
        return False
    document = load_prompt_file(settings.prompt_path)
    document.set_prompt_text(change.facet_name, before)
    save_prompt_file(document)
    return True


def optimize_step(
    settings: Settings,
    steps: DemoSteps,
    change: PromptChange,
    verdict: str,
    scope: list[str],
    announce: Callable[[str], None],
    warn: Callable[[str], None],
) -> DemoOptimize:
    from facetopt.services.optimize.model import OptimizeOptions
    from facetopt.services.optimize.run import run_optimize
    from facetopt.services.progress import SilentProgress

    facet = change.facet_name
    reverted = revert_unproven_edit(settings, change, verdict)
    steps.step(
        f"11. Optimise the {facet} prompt automatically: propose, guard, screen on train, validate once"
        + (" (the unproven manual edit reverted first)" if reverted else ""),
        [
            "facetopt", "optimize", "--facet", facet, "--budget", str(DEMO_BUDGET), "--apply", *scope,
            "--backend", "local", "--output-root", str(settings.output_root),
            "--proposer-api-base", SIMULATED_BASE_URL,
        ],
    )  # fmt: skip
    report = run_optimize(
        settings.model_copy(update={"proposer_api_base": SIMULATED_BASE_URL}),
        OptimizeOptions(facet=facet, budget=DEMO_BUDGET, apply=True),
        SilentProgress(),
        announce=announce,
        warn=warn,
    )
    steps.show("optimize", report)
    return summary_of(report, reverted)


def summary_of(report: Any, reverted: bool) -> DemoOptimize:
    return DemoOptimize(
        run_id=report.run_id,
        run_dir=report.run_dir,
        facet=report.facet,
        reverted_manual_edit=reverted,
        winner=report.winner,
        verdict=report.verdict,
        applied=report.applied,
        calls=report.calls,
        budget=report.budget or DEMO_BUDGET,
        cost_usd=report.cost_usd,
        validation_evals_run=report.validation_evals_run,
        rejected={
            c.candidate_id: c.guard_reasons[0]
            for c in report.candidates
            if c.guard_reasons and not set(c.guard_rules) & {"duplicate", "unchanged"}
        },
    )
