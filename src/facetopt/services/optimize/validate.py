"""The winner's validation: the only validation eval the optimiser runs of its own (plus the
baseline's when none exists), then the compare verdict, then --apply or candidate.yaml."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.clients.prompt_file import FacetPrompt
from facetopt.domain.dataset import DatasetRow
from facetopt.facets.decide.cost import EXPECTED_FACET_TOKENS, estimate_text_tokens
from facetopt.services.cost import UsageMeter
from facetopt.services.eval.record import EvalSummary
from facetopt.services.experiments.budget import budget_warnings
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.optimize import decide
from facetopt.services.optimize.model import OptimizeOptions, OptimizeReport
from facetopt.services.progress import Progress
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.services.optimize.search import Search


def eval_estimate(
    settings: Settings, facet: FacetPrompt, rows: list[DatasetRow], model: str, judge: str
) -> float:
    """Estimated dollars of one validation eval of a prompt grown from `facet` by at most half (the
    guard's limit): per row and trial a facet-model call and a judgement, as `eval --max-cost`
    estimates them (the judged output taken as long as the label); cached calls not deducted."""
    from facetopt.services.eval.scorers import judge_estimate, judge_question
    from facetopt.services.eval.task import facet_request

    model_meter = UsageMeter.of("facet model", model, settings)
    model_meter.reply_tokens = EXPECTED_FACET_TOKENS
    judge_meter = UsageMeter.of("judge", judge, settings)
    growth = model_meter.estimate_tokens(math.ceil(estimate_text_tokens(facet.prompt_text) / 2), 0)
    total = 0.0
    for row in rows:
        text = str(row.input.get("preprocessed_text") or "")
        request = facet_request(facet, text, model, settings.max_tokens, row.id)
        question = judge_question(facet.facet_name, text)
        total += model_meter.estimate(request.messages) + growth
        total += judge_estimate(judge_meter, question, row.expected, row.expected)
    return total * settings.trials


def _spend(search: Search, summary: EvalSummary) -> None:
    calls = summary.rows * summary.trials * 2
    cached = summary.model_outputs_from_cache + summary.judge_verdicts_from_cache
    usage = summary.usage
    cost = sum(u.cost_usd for u in usage)
    search.ledger.release(calls, search.eval_reserve)
    search.ledger.spend(
        "validate",
        calls,
        cached,
        summary.errors + summary.factuality_errors,
        sum(u.prompt_tokens for u in usage),
        sum(u.completion_tokens for u in usage),
        cost,
    )
    search.ledger.phases["validate"].evals.append(summary.experiment_id)
    search.eval_usage.extend(usage)


def _eval_settings(settings: Settings, search: Search, keep: float) -> Settings:
    """The validation eval's settings: under --max-cost, what is left of it minus `keep` (the
    winner's reserve while the baseline's eval runs)."""
    remaining = search.ledger.remaining()
    if remaining is None:
        return settings
    return settings.model_copy(update={"max_cost": max(remaining - keep, 1e-9)})


def validate_winner(
    settings: Settings,
    options: OptimizeOptions,
    report: OptimizeReport,
    search: Search,
    winner: str,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    facet = report.facet
    prompt = search.prompts[winner]
    run_dir = Path(report.run_dir)
    document = decide.candidate_document(search.prompt_path, facet, prompt.prompt_text)
    report.winner, report.winner_sha256 = winner, prompt.prompt_sha256
    report.diff = decide.write_candidate(
        run_dir, document, facet, search.baseline.prompt_text, prompt.prompt_text
    )
    report.candidate_file, report.diff_file = str(run_dir / "candidate.yaml"), str(run_dir / "candidate.diff")
    if report.baseline_experiment is None:
        progress.stage(f"the baseline {facet} prompt on validation (no validation eval of it yet)")
        summary = decide.validation_eval(
            _eval_settings(settings, search, search.eval_reserve),
            facet,
            search.prompt_path,
            progress,
            announce,
            warn,
        )
        _spend(search, summary)
        report.validation_evals = dict(summary.validation_evals)
        report.baseline_experiment = summary.experiment_id
        report.validation_evals_run += 1
    with open_experiments(settings) as experiments:
        earlier = decide.existing_validation_eval(experiments, facet, prompt.prompt_sha256)
    if earlier is not None:  # a re-run of a finished optimisation: the winner was validated already
        report.candidate_experiment = earlier.experiment_id
        report.warnings.append(
            f"the winner {prompt.prompt_sha256[:12]} was already evaluated on validation "
            f"({earlier.experiment_id}): reused, no new validation eval"
        )
    else:
        progress.stage(f"the winner {winner} on validation: the optimiser's one validation eval")
        summary = decide.validation_eval(
            _eval_settings(settings, search, 0.0), facet, run_dir / "candidate.yaml", progress, announce, warn
        )
        _spend(search, summary)
        report.candidate_experiment = summary.experiment_id
        report.validation_evals_run += 1
        report.validation_evals = dict(summary.validation_evals)
    # the optimiser's validation evals count in the experiment budget like any other: say so here too
    report.warnings.extend(
        w for w in budget_warnings(report.validation_evals, report.dataset) if w not in report.warnings
    )
    assert report.baseline_experiment is not None
    compared = decide.compare_on_validation(
        settings, report.baseline_experiment, report.candidate_experiment, options.target, facet, warn
    )
    verdict = next(
        (c for c in compared.facets if c.facet_name.casefold() == facet.casefold()), compared.overall
    )
    report.comparison_id = compared.comparison_id
    report.verdict, report.rule, report.reasons = verdict.verdict, verdict.rule, verdict.reasons
    report.deltas = {d.metric: d.delta for d in verdict.deltas}
    report.warnings.extend(compared.warnings)
    if options.apply and verdict.verdict == "KEEP":
        decide.apply_winner(search.prompt_path, facet, search.baseline.prompt_sha256, prompt.prompt_text)
        report.applied = True
