"""The winner's validation: the only validation eval the optimiser runs of its own (plus the
baseline's when none exists), then the compare verdict, then --apply or candidate.yaml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from facetopt.services.eval.record import EvalSummary
from facetopt.services.experiments import open_experiments
from facetopt.services.optimize import decide
from facetopt.services.optimize.model import OptimizeOptions, OptimizeReport
from facetopt.services.progress import Progress
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.services.optimize.search import Search


def _spend(search: Search, summary: EvalSummary) -> None:
    calls = summary.rows * summary.trials * 2
    cached = summary.model_outputs_from_cache + summary.judge_verdicts_from_cache
    usage = getattr(summary, "usage", None) or []
    search.ledger.release(calls)
    search.ledger.spend(
        "validate",
        calls,
        cached,
        summary.errors + summary.factuality_errors,
        sum(int(getattr(u, "prompt_tokens", 0) or 0) for u in usage),
        sum(int(getattr(u, "completion_tokens", 0) or 0) for u in usage),
    )
    search.ledger.phases["validate"].evals.append(summary.experiment_id)


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
        summary = decide.validation_eval(settings, facet, search.prompt_path, progress, announce, warn)
        _spend(search, summary)
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
            settings, facet, run_dir / "candidate.yaml", progress, announce, warn
        )
        _spend(search, summary)
        report.candidate_experiment = summary.experiment_id
        report.validation_evals_run += 1
        report.validation_evals = dict(getattr(summary, "validation_evals", None) or {})
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
