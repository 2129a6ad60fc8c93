"""`facetopt optimize --facet NAME`: the whole command (see the package docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable

from facetopt.clients.llm.client import (
    Endpoint,
    mixed_simulation_warning,
    resolve_facet_model,
    resolve_judge,
    simulated_roles,
)
from facetopt.clients.llm.endpoints import key_notes, resolve_proposer
from facetopt.clients.prompt_file import load_prompt_file
from facetopt.domain.cost import RoleUsage
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import InputError, NotFoundError
from facetopt.facets.decide.cost import EXPECTED_FACET_TOKENS, estimate_text_tokens
from facetopt.facets.decide.verdict import target_rule
from facetopt.services.backends import Backend, open_backend
from facetopt.services.cost import CostBudget, UsageMeter, max_cost_error, prices
from facetopt.services.eval.task import facet_request
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.optimize import decide, record
from facetopt.services.optimize.calls import Caller
from facetopt.services.optimize.model import Candidate, OptimizeOptions, OptimizeReport
from facetopt.services.optimize.screen import minibatch
from facetopt.services.optimize.search import Search
from facetopt.services.optimize.spend import Ledger
from facetopt.services.optimize.validate import eval_estimate, validate_winner
from facetopt.services.progress import Progress
from facetopt.settings import Settings


def check_options(options: OptimizeOptions) -> str:
    """The target's metric; bad numbers are the user's to fix."""
    metric = target_rule(options.target).metric
    for name, value in (
        ("--candidates", options.candidates),
        ("--rounds", options.rounds),
        ("--minibatch", options.minibatch),
    ):
        if value < 1:
            raise InputError(
                f"{name} must be at least 1 (got {value})",
                hint="for example --candidates 4 --rounds 3 --minibatch 30",
            )
    if options.budget is not None and options.budget < 1:
        raise InputError(
            f"--budget must be a positive number of calls (got {options.budget})",
            hint="for example --budget 800",
        )
    return metric


def run_optimize(
    settings: Settings,
    options: OptimizeOptions,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
    backend: Backend | None = None,
) -> OptimizeReport:
    metric = check_options(options)
    document = load_prompt_file(settings.prompt_path)
    baseline = document.facet(options.facet)
    facet = baseline.facet_name
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    dataset_project = settings.dataset_project or settings.require(
        "target_project",
        "--dataset-project",
        "FACET_OPTIMIZER_DATASET_PROJECT (or FACET_OPTIMIZER_TARGET_PROJECT)",
    )
    backend = backend if backend is not None else open_backend(settings, announce)
    progress.stage(f"reading dataset {dataset!r} ({backend.name})")
    rows = [
        r
        for r in backend.dataset_rows(dataset_project, dataset)
        if r.facet_name.casefold() == facet.casefold()
    ]
    train = sorted((r for r in rows if (r.split or "").casefold() == "train"), key=lambda r: r.id)
    validation = [r for r in rows if (r.split or "").casefold() == "validation"]
    if not train or not validation:
        raise NotFoundError(
            f"facet {facet} has {len(train)} train and {len(validation)} validation rows in dataset {dataset!r}",
            hint="optimize edits against train and checks on validation: build the dataset with "
            "`facetopt dataset create` (check --dataset and --facet)",
        )
    model, judge, proposer = (
        resolve_facet_model(settings),
        resolve_judge(settings),
        resolve_proposer(settings),
    )
    warnings: list[str] = []
    for note in key_notes(model, judge, proposer):
        warn(note)
        warnings.append(note)
    roles = simulated_roles(model, judge, proposer)
    if roles and (message := mixed_simulation_warning(model, judge, proposer)):
        warn(message)
        warnings.append(message)
    with open_experiments(settings, backend=backend) as experiments:
        baseline_eval = decide.existing_validation_eval(experiments, facet, baseline.prompt_sha256)
    evals = 1 if baseline_eval else 2  # the winner's, and the baseline's when it has none
    eval_calls = len(validation) * settings.trials * 2  # facet model and judge per row and trial
    eval_cost = eval_estimate(settings, baseline, validation, model.model, judge.model)
    ledger = Ledger(options.budget, eval_calls * evals, settings.max_cost, eval_cost * evals)
    search_budget = CostBudget(ledger.search_limit())  # the proposer and the facet model share it
    model_meter = UsageMeter(
        "facet model", model.model, prices(settings), search_budget, EXPECTED_FACET_TOKENS
    )
    # a proposal's reply is the whole prompt, which the guard lets grow by half, and a hypothesis
    proposal_tokens = math.ceil(estimate_text_tokens(baseline.prompt_text) * 1.5) + 60
    proposer_meter = UsageMeter("proposer", proposer.model, prices(settings), search_budget, proposal_tokens)
    baseline_calls, baseline_cost = Caller.estimate_requests(
        model_meter,
        [facet_request(baseline, _text(r), model.model, settings.max_tokens, r.id) for r in train],
    )
    screen_rows = minibatch(train, min(options.minibatch, max(1, len(train) // 2)), options.seed)
    # the floor it quotes is the floor it enforces: the baseline, one proposal screened, validation
    ledger.require(
        baseline_calls + 1 + len(screen_rows),
        baseline_cost,
        f"scoring the baseline on the {len(train)} train rows of {facet} and one proposal screened on "
        f"{len(screen_rows)} minibatch rows",
    )
    if len(screen_rows) < options.minibatch and len(screen_rows) < len(train):
        warnings.append(
            f"the minibatch is {len(screen_rows)} of the {len(train)} train rows (at most half): the other "
            "rows supply the failures the proposer is shown, so screening never scores a row it saw"
        )
    run_dir = record.new_run(settings.output_root)
    report = OptimizeReport(
        run_id=run_dir.name,
        run_dir=str(run_dir),
        facet=facet,
        target=options.target.lower(),
        metric=metric,
        dataset=dataset,
        options=options.model_dump(),
        proposer_model=proposer.model,
        proposer_endpoint=proposer.label,
        model=model.model,
        simulated_roles=roles,
        prompt_file=str(document.path),
        baseline_sha256=baseline.prompt_sha256,
        train_rows=len(train),
        validation_rows=len(validation),
        budget=options.budget,
        reserved_for_validation=ledger.reserve,
        max_cost=settings.max_cost,
        reserved_cost_usd=round(ledger.reserve_cost, 6),
        baseline_experiment=baseline_eval.experiment_id if baseline_eval else None,
        warnings=warnings,
    )

    def caller(endpoint: Endpoint, meter: UsageMeter, concurrency: int) -> Caller:
        return Caller(
            endpoint,
            meter,
            store_path=settings.store_path,
            use_cache=settings.use_cache,
            timeout=settings.timeout_for(endpoint.model),
            deadline=settings.call_deadline,
            concurrency=concurrency,
        )

    search = Search(
        options=options,
        prompt_path=document.path,
        baseline=baseline,
        metric=metric,
        model=model.model,
        max_tokens=settings.max_tokens,
        train=train,
        minibatch=screen_rows,
        model_caller=caller(model, model_meter, settings.eval_concurrency_for(model.model)),
        proposer_caller=caller(proposer, proposer_meter, 1),
        ledger=ledger,
        progress=progress,
        on_candidate=lambda _c: record.write_candidates(run_dir, search.candidates),
        eval_reserve=eval_cost,
    )
    try:
        progress.stage(f"scoring the baseline {facet} prompt on {len(train)} train rows")
        base = search.train_score("baseline", baseline)
        if base is None:  # the replies used more than their estimates: the cost limit held calls back
            raise max_cost_error(settings.max_cost, "baseline facet model", search_budget.refused)
        report.baseline_train_score = base.score
        report.train_failures = {
            k: sum(1 for f in base.failures() if f.kind == k) for k in ("fp", "fn", "error")
        }
        ids = {r.id for r in search.minibatch}
        report.minibatch_ids = sorted(ids)
        values = [r.value for r in base.rows if r.row.id in ids and r.value is not None]
        report.baseline_minibatch_score = sum(values) / len(values) if values else None
        errors = [r.error for r in base.rows if r.error]
        if base.rows and len(errors) == len(base.rows):
            report.status = "failed"
            report.cause = f"every facet model call failed on the baseline's train rows: {errors[0]}"
            return report
        search.run(report.baseline_minibatch_score)
        report.stopped = search.stopped
        report.candidates = search.candidates
        if (cause := failure_cause(search)) is not None:
            report.status, report.cause = "failed", cause
            return report
        winner = pick_winner(search)
        if winner is None:
            report.reasons = [no_winner_reason(search)]
        else:
            # paid replies committed first: the store must be free for the validation evals
            search.model_caller.close()
            search.proposer_caller.close()
            validate_winner(settings, options, report, search, winner, progress, announce, warn)
        report.status = "complete"
    except KeyboardInterrupt:
        report.status, report.cause = "interrupted", "stopped by Ctrl-C; paid calls are cached"
        raise
    except Exception as error:
        interrupted = getattr(error, "exit_code", None) == 130  # Ctrl-C forwarded to the eval runner
        report.status = "interrupted" if interrupted else "failed"
        report.cause = getattr(error, "message", None) or f"{type(error).__name__}: {error}"[:300]
        raise
    finally:
        search.model_caller.close()
        search.proposer_caller.close()
        report.candidates, report.spend, report.calls = search.candidates, ledger.report(), ledger.calls
        report.cost_usd = ledger.cost
        report.usage = merge_usage([proposer_meter.usage, model_meter.usage, *search.eval_usage])
        record.write_candidates(run_dir, search.candidates)
        record.write_report(report)
    return report


def no_winner_reason(search: Search) -> str:
    promising = [c for c in search.candidates if (c.minibatch_delta or 0.0) > 0]
    if promising and all(c.train_score is None for c in promising):
        return (
            f"{len(promising)} candidate(s) beat the baseline on the minibatch, but none could be scored on "
            f"train ({search.stopped or 'the budgets'}): nothing to validate; give a larger budget"
        )
    return "no candidate beat the baseline's train score: nothing to validate"


def failure_cause(search: Search) -> str | None:
    """Why the search produced nothing to judge, when it is a failure rather than a result: no
    proposal could be parsed, every proposer call failed, or every screening call failed."""
    proposed = search.candidates
    if proposed and all(c.status == "proposal_failed" for c in proposed):
        first = proposed[0].error or "no reply"
        asked = search.ledger.phases["propose"]
        if asked.calls and asked.failed >= asked.calls:
            if search.stopped is not None:  # --max-cost held the calls back: a stop, not a failure
                return None
            return f"every proposer call failed ({len(proposed)} of {len(proposed)}): {first}"
        return f"no proposal could be parsed ({len(proposed)} of {len(proposed)}): {first}"
    screen = search.ledger.phases["screen"]
    if screen.calls and screen.failed >= screen.calls and search.stopped is None:
        return f"every facet model call failed while screening ({screen.failed} of {screen.calls})"
    return None


def _text(row: DatasetRow) -> str:
    return str(row.input.get("preprocessed_text") or "")


def merge_usage(usages: list[RoleUsage]) -> list[RoleUsage]:
    """One entry per role and model: the in-process calls and the validation evals' own reports."""
    merged: dict[tuple[str, str], RoleUsage] = {}
    for usage in usages:
        if not usage.calls and not usage.cached_calls:
            continue
        key = (usage.role, usage.model)
        if key not in merged:
            merged[key] = usage.model_copy()
            continue
        into = merged[key]
        into.calls += usage.calls
        into.cached_calls += usage.cached_calls
        into.prompt_tokens += usage.prompt_tokens
        into.completion_tokens += usage.completion_tokens
        into.cost_usd += usage.cost_usd
    return list(merged.values())


def pick_winner(search: Search) -> str | None:
    """The best train score over all rounds, among candidates scored on train: the parents of later
    rounds (scored when chosen) and the `finalists` best minibatch candidates that beat the baseline
    there (scored now, when the budgets allow). Only a candidate with a train score is a finalist;
    the winner must beat the baseline's train score."""

    def score(candidate: Candidate) -> float | None:
        scored = search.train_score(candidate.candidate_id, search.prompts[candidate.candidate_id])
        if scored is None:
            return None
        search.record_train(candidate, scored)
        return scored.score

    base = search.train_scores["baseline"].score
    winner = choose_winner(search.candidates, base, search.options.finalists, score)
    return winner.candidate_id if winner is not None else None


def choose_winner(
    candidates: list[Candidate],
    baseline_train: float | None,
    finalists: int,
    score: Callable[[Candidate], float | None],
) -> Candidate | None:
    ranked = sorted(
        (c for c in candidates if (c.minibatch_delta or 0.0) > 0 and c.prompt_sha256),
        key=lambda c: -(c.minibatch_score or 0.0),
    )[:finalists]
    for candidate in ranked:
        if candidate.train_score is None:
            candidate.train_score = score(candidate)
    best: Candidate | None = None
    bar = baseline_train or 0.0
    for candidate in candidates:
        if candidate.train_score is None:
            continue
        candidate.status = "finalist"
        if candidate.train_score > bar:
            best, bar = candidate, candidate.train_score
    if best is not None:
        best.status = "winner"
    return best
