"""What each command says comes next (`next_steps`), decided from its own report: for every command,
the reports that lead on (the commands AGENTS.md runs next) and those that stop and ask a person."""

from __future__ import annotations

import json

import pytest

from facetopt.domain.audit import AuditReport, FacetAudit
from facetopt.domain.dataset import BalanceReport, DatasetCreateSummary, FailedRow
from facetopt.domain.experiments import ExperimentRecord, FacetComparison, FacetMetrics
from facetopt.domain.next_steps import NextStep, one_line
from facetopt.services.eval.record import EvalSummary
from facetopt.services.experiments.compare import CompareReport, PromptDiff
from facetopt.services.next_steps import (
    audit_next_steps,
    compare_next_steps,
    dataset_create_next_steps,
    eval_next_steps,
    optimize_next_steps,
    publish_next_steps,
)
from facetopt.services.optimize.model import OptimizeReport
from facetopt.services.publish.evidence import FacetEvidence
from facetopt.services.publish.run import PublishedFunction, PublishResult


def commands(steps: list[NextStep]) -> list[str | None]:
    return [s.command for s in steps]


def stops(steps: list[NextStep]) -> list[str]:
    return [s.stop for s in steps if s.stop is not None]


def test_a_step_is_a_command_or_a_stop_and_its_json_has_only_what_it_is():
    assert json.loads(NextStep(command="facetopt report", why="w").model_dump_json()) == {
        "command": "facetopt report",
        "why": "w",
    }
    assert json.loads(NextStep(stop="ask", why="w").model_dump_json()) == {"stop": "ask", "why": "w"}
    with pytest.raises(ValueError):
        NextStep(why="neither")
    with pytest.raises(ValueError):
        NextStep(command="a", stop="b", why="both")
    line = one_line([NextStep(command="facetopt report", why=""), NextStep(stop="ask a person", why="")])
    assert line == "next: facetopt report; stop: ask a person"


# dataset create ---------------------------------------------------------------------------------


def created(**update) -> DatasetCreateSummary:
    summary = DatasetCreateSummary(
        run_id="r", run_dir="/r", backend="local", ground_truth_model="gpt-5.4", ground_truth_endpoint="x"
    )
    return summary.model_copy(update=update)


def test_create_leads_to_bootstrap_audit_and_the_baseline():
    steps = dataset_create_next_steps(
        created(balance=BalanceReport(dataset="d", target_project="p", backend="local"))
    )
    assert commands(steps) == [
        "facetopt bootstrap",
        "facetopt dataset audit --split validation",
        "facetopt eval --split validation",
    ]


def test_create_with_balance_warnings_stops_and_names_them():
    balance = BalanceReport(
        dataset="d", target_project="p", backend="local", warnings=["facet 'task': no negative rows"]
    )
    (step,) = dataset_create_next_steps(created(balance=balance, warnings=["SIMULATED labels"]))
    assert step.stop and "ask a person" in step.stop and step.why == "facet 'task': no negative rows"


def test_create_with_failed_labels_runs_again_and_simulated_labels_on_braintrust_stop():
    failed = created(labels_failed=2, failed_rows=[FailedRow(id="a", facet_name="f", reason="HTTP 500")] * 2)
    (step,) = dataset_create_next_steps(failed)
    assert step.command == "facetopt dataset create" and step.why.startswith("2 labels failed")
    (step,) = dataset_create_next_steps(created(backend="braintrust", simulated_roles=["labeller"]))
    assert step.stop == "the labels are simulated on a real project"


def test_a_dry_run_leads_to_the_real_run_unless_a_bucket_is_empty_or_a_facet_small():
    full = {"issues": {"positive": 10, "negative": 10}}
    assert commands(dataset_create_next_steps(created(dry_run=True, would_label=full))) == [
        "facetopt dataset create"
    ]
    # task: 22 calls but no negative one; sentiment: 10 + 3 = 13 calls, under 20
    thin = {**full, "task": {"positive": 22, "negative": 0}, "sentiment": {"positive": 10, "negative": 3}}
    (step,) = dataset_create_next_steps(created(dry_run=True, would_label=thin))
    assert step.stop and step.why == "no positive or no negative calls for task; under 20 calls for sentiment"


# eval -------------------------------------------------------------------------------------------


def metrics(name: str, n: int, fp: int, fn: int) -> FacetMetrics:
    return FacetMetrics(facet_name=name, n=n, fp=fp, fn=fn, binary_decision_match=(n - fp - fn) / n)


def evaluated(facets: list[FacetMetrics], split: str = "validation", **update) -> EvalSummary:
    summary = EvalSummary(
        experiment_id="e",
        experiment_name="n",
        backend="local",
        runner="bt",
        project="p",
        model="m",
        model_endpoint="simulated",
        judge_model="j",
        judge_endpoint="simulated",
        dataset="d",
        dataset_project="p",
        prompt_file="f",
        run_dir="/r",
        split=split,
        metrics=[*facets, FacetMetrics(facet_name="overall", n=sum(m.n for m in facets))],
        validation_evals={m.facet_name: 1 for m in facets},
    )
    return summary.model_copy(update=update)


def test_a_first_validation_run_points_at_the_weakest_facet():
    # match: issues 30/40 = 0.75, task 26/28 = 0.93, sentiment 27/27 = 1
    summary = evaluated(
        [metrics("issues", 40, 9, 1), metrics("sentiment", 27, 0, 0), metrics("task", 28, 2, 0)]
    )
    assert commands(eval_next_steps(summary)) == [
        "facetopt inspect failures --facet issues",
        "facetopt eval --split train --facet issues",
    ]
    assert "binary decision match 0.750" in eval_next_steps(summary)[0].why


def test_a_tie_goes_to_the_facet_with_more_failing_rows():
    # both 0.8: task 4 failures of 20, issues 8 of 40: issues has more failing rows
    summary = evaluated([metrics("task", 20, 4, 0), metrics("issues", 40, 4, 4)])
    assert commands(eval_next_steps(summary))[0] == "facetopt inspect failures --facet issues"


def test_facets_under_ten_rows_are_passed_over_and_alone_they_stop():
    summary = evaluated([metrics("issues", 4, 2, 0), metrics("task", 12, 1, 0)])
    first = eval_next_steps(summary)[0]
    assert first.command == "facetopt inspect failures --facet task" and "issues passed over" in first.why
    (step,) = eval_next_steps(evaluated([metrics("issues", 4, 2, 0), metrics("task", 3, 0, 0)]))
    assert step.stop and "under 10 rows (issues)" in step.stop


def test_no_failures_stop_nothing_to_fix():
    (step,) = eval_next_steps(evaluated([metrics("issues", 40, 0, 0)]))
    assert step.stop == "no facet fails on these rows: nothing to fix"


def test_a_second_validation_run_is_compared_and_past_the_budget_stops():
    second = evaluated([metrics("issues", 40, 5, 0)], validation_evals={"issues": 2})
    assert commands(eval_next_steps(second)) == ["facetopt compare previous latest"]
    (step,) = eval_next_steps(evaluated([metrics("issues", 40, 5, 0)], validation_evals={"issues": 6}))
    assert step.stop and "issues" in step.stop


def test_train_and_test_runs_and_failed_rows():
    train = evaluated([metrics("issues", 160, 26, 5)], split="train", validation_evals={})
    assert commands(eval_next_steps(train)) == [
        "facetopt inspect failures --facet issues --split train --limit 0",
        "facetopt eval --split validation",
    ]
    test = evaluated([metrics("issues", 30, 2, 0)], split="test", validation_evals={})
    assert commands(eval_next_steps(test)) == ["facetopt compare previous latest --split test --facet issues"]
    failed = evaluated([metrics("issues", 40, 5, 0)], errors=3)
    (step,) = eval_next_steps(failed)
    assert step.command == "facetopt eval --split validation --facet issues" and step.why.startswith("3 rows")


# compare and optimize ---------------------------------------------------------------------------


def run_record(experiment_id: str, test_facets: list[str] | None = None) -> ExperimentRecord:
    return ExperimentRecord(
        experiment_id=experiment_id,
        experiment_name=experiment_id,
        backend="local",
        model="m",
        dataset="d",
        created="2024-01-01T00:00:00Z",
        test_facets=test_facets,
    )


def decided(verdict: str, rule: str, **fields) -> FacetComparison:
    return FacetComparison(facet_name="issues", paired_rows=40, verdict=verdict, rule=rule, **fields)


def compared(facet: FacetComparison, test_facets=None, **update) -> CompareReport:
    report = CompareReport(
        baseline=run_record("a"),
        candidate=run_record("b", test_facets),
        target="precision",
        seed=0,
        facets=[facet, FacetComparison(facet_name="task", paired_rows=28, verdict="INCONCLUSIVE")],
        overall=FacetComparison(facet_name="overall", paired_rows=68, verdict=facet.verdict),
        prompt_diffs=[
            PromptDiff(facet_name="issues", changed=True),
            PromptDiff(facet_name="task", changed=False),
        ],
    )
    return report.model_copy(update=update)


def test_a_keep_leads_to_the_report_and_a_publish_dry_run():
    steps = compare_next_steps(compared(decided("KEEP", "target_above_zero")))
    assert commands(steps) == ["facetopt report", "facetopt publish --facet issues --dry-run"]


def test_a_keep_on_a_dataset_with_a_test_split_leads_to_the_final_check_first():
    steps = compare_next_steps(compared(decided("KEEP", "target_above_zero"), test_facets=["issues"]))
    assert commands(steps) == [
        "facetopt eval --split test --facet issues",
        "facetopt compare previous latest --split test --target precision --facet issues",
    ]
    final = compare_next_steps(compared(decided("KEEP", "target_above_zero"), ["issues"], final_check=True))
    assert commands(final) == ["facetopt report", "facetopt publish --facet issues --dry-run"]


def test_inconclusive_stops_with_the_rows_needed():
    (step,) = compare_next_steps(
        compared(
            decided("INCONCLUSIVE", "too_few_rows", rows_needed=8, rows_needed_by_metric={"specificity": 8})
        )
    )
    assert step.stop == "the rows cannot tell for issues (more paired rows needed: specificity 8)"
    (step,) = compare_next_steps(
        compared(decided("INCONCLUSIVE", "guard_unsettled", rows_needed_by_metric={"positive_recall": 5169}))
    )
    assert step.stop and "guard" in step.stop and "positive_recall 5169" in step.stop
    assert "--no-guard is a person's call" in step.why


def test_rejects_revert_and_a_guard_rejection_or_a_final_check_stops():
    (step,) = compare_next_steps(compared(decided("REJECT", "target_below_zero")))
    assert step.command == "facetopt inspect failures --facet issues --split train --limit 0"
    assert step.why.startswith("revert the edit")
    (step,) = compare_next_steps(compared(decided("REJECT", "guard_worse")))
    assert step.stop and step.stop.startswith("revert the edit of issues")
    (step,) = compare_next_steps(compared(decided("REJECT", "target_below_zero"), final_check=True))
    assert step.stop and "do not publish" in step.stop


def test_nothing_changed_changed_labels_and_the_budget_stop():
    unchanged = compared(decided("KEEP", "target_above_zero"))
    unchanged.prompt_diffs[0].changed = False
    assert stops(compare_next_steps(unchanged)) == [
        "no facet prompt differs between the two runs: nothing to decide"
    ]
    (step,) = compare_next_steps(compared(decided("KEEP", "target_above_zero"), label_changed=3))
    assert step.stop and step.stop.startswith("3 rows' labels changed")
    (step,) = compare_next_steps(
        compared(decided("KEEP", "target_above_zero"), validation_evals={"issues": 6})
    )
    assert step.stop and "too often for issues" in step.stop


def optimized(**update) -> OptimizeReport:
    report = OptimizeReport(
        run_id="o",
        run_dir="/o",
        facet="issues",
        target="precision",
        metric="negative_specificity",
        proposer_model="p",
        proposer_endpoint="simulated",
        model="m",
        prompt_file="f",
        baseline_sha256="a" * 64,
        winner="r1c1",
        verdict="KEEP",
        rule="target_above_zero",
        candidate_file="/o/candidate.yaml",
    )
    return report.model_copy(update=update)


def test_optimize_keep_applied_leads_on_and_otherwise_stops():
    assert commands(optimize_next_steps(optimized(applied=True))) == [
        "facetopt report",
        "facetopt publish --facet issues --dry-run",
    ]
    (step,) = optimize_next_steps(optimized())
    assert step.stop and "not applied" in step.stop and "/o/candidate.yaml" in step.why
    (step,) = optimize_next_steps(optimized(winner=None, verdict=None, stopped="budget spent"))
    assert step.stop == "no candidate reached validation" and step.why.startswith("budget spent")
    (step,) = optimize_next_steps(optimized(verdict="INCONCLUSIVE", rule="unsettled"))
    assert step.stop == "the rows cannot tell for issues"


# publish and audit ------------------------------------------------------------------------------


def published(statuses: dict[str, str], dry_run: bool = True, forced: bool = False) -> PublishResult:
    evidence = [  # constructed as read (a status of a later evidence rule included)
        FacetEvidence.model_construct(facet_name=f, prompt_sha256="a" * 64, status=s, message=f"{f} is {s}")
        for f, s in statuses.items()
    ]
    functions = [
        PublishedFunction(
            facet_name=f, name=f, slug=f"facet-optimizer-{f}", prompt_sha256="a" * 64, status="would_publish"
        )
        for f in statuses
    ]
    return PublishResult(
        backend="local",
        project="p",
        prompt_file="f",
        dry_run=dry_run,
        forced=forced,
        evidence=evidence,
        functions=functions,
        definitions=[],
    )


def test_publish_dry_run_with_evidence_leads_to_the_real_run():
    steps = publish_next_steps(published({"issues": "evaluated", "task": "evaluated"}))
    assert commands(steps) == ["facetopt publish --facet issues --facet task"]
    assert "a person agrees" in steps[0].why
    assert stops(publish_next_steps(published({"issues": "evaluated"}, dry_run=False))) == ["done: published"]


def test_publish_without_evidence_never_suggests_force():
    steps = publish_next_steps(published({"issues": "simulated_only", "task": "never_evaluated"}))
    assert stops(steps) == ["issues lacks evidence (simulated_only): do not publish"]
    assert commands(steps)[1] == "facetopt eval --split validation"
    assert all("--force" not in (s.command or "") for s in steps)
    assert "never an agent's" in steps[0].why


def audited(facets: list[FacetAudit], warnings: list[str] | None = None) -> AuditReport:
    return AuditReport(
        backend="local",
        target_project="p",
        dataset="d",
        kind="second-model",
        labeller_model="l",
        second_model="s",
        second_endpoint="simulated",
        interval_method="wilson",
        facets=facets,
        warnings=warnings or [],
    )


def test_audit_leads_to_the_baseline_unless_labels_are_noisy_or_answers_failed():
    assert commands(audit_next_steps(audited([FacetAudit(facet_name="issues", rows=40)]))) == [
        "facetopt eval --split validation"
    ]
    informational = [
        "self-consistency check: an upper bound",
        "second opinions come from the SIMULATED model",
    ]
    assert commands(audit_next_steps(audited([FacetAudit(facet_name="issues", rows=40)], informational))) == [
        "facetopt eval --split validation"
    ]
    noisy = FacetAudit(facet_name="task", rows=28, warning="task: kappa 0.41 lies under 0.6")
    (step,) = audit_next_steps(audited([noisy], ["task: kappa 0.41 lies under 0.6"]))
    assert step.stop == "labels look noisy for task: ask a person to review them"
    assert step.why.startswith("task: kappa 0.41") and "review export" in step.why
    mixed = audited([FacetAudit(facet_name="issues", rows=40)])
    mixed.simulated_roles = ["auditor"]
    (step,) = audit_next_steps(mixed)
    assert step.stop == "the auditor is simulated and the other labeller is real"
    (step,) = audit_next_steps(audited([FacetAudit(facet_name="issues", rows=38, failed=2)]))
    assert step.command == "facetopt dataset audit" and step.why.startswith("2 second opinions failed")


def test_publish_of_a_prompt_evaluated_but_never_compared_leads_to_the_compare():
    (step,) = publish_next_steps(published({"issues": "never_compared"}))
    assert step.command == "facetopt compare previous latest --facet issues"
    assert step.why.startswith("issues is never_compared; compare it against its baseline")
