"""What comes next after each command, decided from the command's own report alone (pure functions).

Commands are written without `--json` and without the flags that say where state lives
(`--env-file`, `--output-root`, `--backend`): add the same ones the command just ran with."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING

from facetopt.domain.next_steps import NextStep, run, stop
from facetopt.facets.data.balance import MIN_ROWS_PER_FACET
from facetopt.facets.decide.verdict import MIN_PAIRED_ROWS
from facetopt.services.experiments.budget import EXPERIMENT_BUDGET

if TYPE_CHECKING:
    from facetopt.domain.audit import AuditReport
    from facetopt.domain.dataset import DatasetCreateSummary
    from facetopt.domain.experiments import FacetComparison, FacetMetrics
    from facetopt.services.eval.record import EvalSummary
    from facetopt.services.experiments.compare import CompareReport
    from facetopt.services.optimize.model import OptimizeReport
    from facetopt.services.publish.run import PublishResult

MORE_DATA = (
    "a larger dataset (FACET_OPTIMIZER_POSITIVE_LIMIT / FACET_OPTIMIZER_NEGATIVE_LIMIT) or a later time "
    "window; do not keep tuning against the same validation rows"
)


def _q(value: str) -> str:
    return shlex.quote(value)


def _facets(names: Iterable[str]) -> str:
    return " ".join(f"--facet {_q(n)}" for n in names)


def dataset_create_next_steps(summary: DatasetCreateSummary) -> list[NextStep]:
    if summary.dry_run:
        empty = sorted(f for f, counts in summary.would_label.items() if not all(counts.values()))
        small = sorted(
            f
            for f, counts in summary.would_label.items()
            if sum(counts.values()) < MIN_ROWS_PER_FACET and f not in empty
        )
        if empty or small:
            found = [f"no positive or no negative calls for {', '.join(empty)}"] if empty else []
            found += [f"under {MIN_ROWS_PER_FACET} calls for {', '.join(small)}"] if small else []
            return [
                stop(
                    "the dataset would be unbalanced or small: ask a person before paying for labels",
                    "; ".join(found),
                )
            ]
        return [run("facetopt dataset create", "label the sampled calls, split and store the dataset")]
    if summary.labels_failed:
        return [
            run(
                "facetopt dataset create",
                f"{summary.labels_failed} labels failed (failed_rows says why); a re-run pays only for "
                "the missing labels",
            )
        ]
    if summary.backend != "local" and "labeller" in summary.simulated_roles:
        return [stop("the labels are simulated on a real project", "a simulated labeller proves nothing")]
    warnings = summary.balance.warnings if summary.balance else []
    if warnings:
        return [
            stop("the dataset is unbalanced or small: ask a person before optimising", "; ".join(warnings))
        ]
    return [
        run("facetopt bootstrap", "write the editable prompt file from this run (once: skip if it exists)"),
        run("facetopt dataset audit --split validation", "a second opinion on the validation labels"),
        run("facetopt eval --split validation", "the baseline: the current prompts on validation"),
    ]


def weakest_facet(metrics: list[FacetMetrics]) -> tuple[FacetMetrics | None, list[str]]:
    """The facet to tune: the lowest binary decision match among facets with failures and at least
    MIN_PAIRED_ROWS rows; a tie goes to more failing rows, then more rows, then the name. Also the
    facets with failures passed over for having too few rows."""
    failing = [
        m
        for m in metrics
        if m.facet_name != "overall" and m.binary_decision_match is not None and m.binary_decision_match < 1
    ]
    small = sorted(m.facet_name for m in failing if m.n < MIN_PAIRED_ROWS)
    sized = [m for m in failing if m.n >= MIN_PAIRED_ROWS]
    if not sized:
        return None, small
    return min(
        sized, key=lambda m: (m.binary_decision_match, -(m.fp + m.fn), -m.n, m.facet_name.casefold())
    ), small


def eval_next_steps(summary: EvalSummary) -> list[NextStep]:
    split = summary.split or ""
    facets = [m.facet_name for m in summary.metrics if m.facet_name != "overall"]
    if summary.errors:
        again = f"facetopt eval --split {_q(split)}" if split else "facetopt eval"
        if len(facets) == 1:
            again += f" {_facets(facets)}"
        return [
            run(
                again,
                f"{summary.errors} row{'s' if summary.errors != 1 else ''} failed (failed_rows says why): "
                "fix the cause and re-run; cached outputs are not paid again",
            )
        ]
    over = sorted(f for f, n in summary.validation_evals.items() if n > EXPERIMENT_BUDGET and f in facets)
    if "validation" in split.split(",") and over:
        return [
            stop(
                f"validation has been evaluated too often for {', '.join(over)}: ask for fresh rows",
                f"past the budget of {EXPERIMENT_BUDGET} validation evals: validation is no longer a fair check",
            )
        ]
    if split == "train":
        return [
            *[
                run(
                    f"facetopt inspect failures --facet {_q(f)} --split train --limit 0",
                    "the train failures, with their texts, to edit against",
                )
                for f in facets
            ],
            run(
                "facetopt eval --split validation",
                "once the edit holds on train: the candidate on validation",
            ),
        ]
    if split == "test":
        return [
            run(
                f"facetopt compare previous latest --split test {_facets(facets)}".rstrip(),
                "the final check, once both the baseline and the kept prompt ran on test",
            )
        ]
    if max((summary.validation_evals.get(f, 0) for f in facets), default=0) >= 2:
        return [
            run(
                "facetopt compare previous latest",
                "pair this run with the previous validation run (after a second edit, name the "
                "original baseline's experiment id instead of previous)",
            )
        ]
    worst, small = weakest_facet(summary.metrics)
    too_small = f"; {', '.join(small)} passed over: under {MIN_PAIRED_ROWS} rows" if small else ""
    if worst is None and small:
        return [
            stop(
                f"every failing facet has under {MIN_PAIRED_ROWS} rows ({', '.join(small)}): ask for more data",
                f"compare needs {MIN_PAIRED_ROWS} paired rows for any verdict; ask for {MORE_DATA}",
            )
        ]
    if worst is None:
        return [
            stop(
                "no facet fails on these rows: nothing to fix",
                "every output matches its label; ask for fresh or harder rows before editing",
            )
        ]
    match = worst.binary_decision_match or 0.0
    return [
        run(
            f"facetopt inspect failures --facet {_q(worst.facet_name)}",
            f"{worst.facet_name} is the weakest facet (binary decision match {match:.3f}){too_small}",
        ),
        run(
            f"facetopt eval --split train --facet {_q(worst.facet_name)}",
            "score it on train: the failures to edit against",
        ),
    ]


def _verdict_steps(
    facet: str,
    verdict: str,
    rule: str,
    rows_needed: int | None,
    by_metric: dict[str, int],
    final_check: bool,
    test_split: bool,
    target: str,
) -> list[NextStep]:
    """Shared by compare and optimize: what a facet's verdict asks for."""
    needed = ", ".join(f"{metric} {rows}" for metric, rows in by_metric.items())
    needed = f" (more paired rows needed: {needed or rows_needed})" if (needed or rows_needed) else ""
    if verdict == "KEEP" and test_split and not final_check:
        return [
            run(
                f"facetopt eval --split test --facet {_q(facet)}",
                "the final check on test: once with the baseline prompt restored, once with the kept prompt",
            ),
            run(
                f"facetopt compare previous latest --split test --target {_q(target)} --facet {_q(facet)}",
                "the kept prompt against the baseline on test (the one final check)",
            ),
        ]
    if verdict == "KEEP":
        return [
            run("facetopt report", "the decision page, for the person who decides"),
            run(
                f"facetopt publish --facet {_q(facet)} --dry-run",
                "check the evidence; publish without --dry-run only when it passes and a person agrees",
            ),
        ]
    if final_check:
        return [
            stop(
                f"the final check on test says {verdict} for {facet}: do not publish; report it",
                "test is looked at once: no more edits against it",
            )
        ]
    if verdict == "REJECT" and rule == "guard_worse":
        return [
            stop(
                f"revert the edit of {facet}: a guard is worse by more than the margin",
                "the trade-off is a person's call; more edits against the same validation rows overfit",
            )
        ]
    if verdict == "REJECT":
        return [
            run(
                f"facetopt inspect failures --facet {_q(facet)} --split train --limit 0",
                "revert the edit (the judged metric got worse); one different edit against train is allowed",
            )
        ]
    if rule in ("guard_unsettled", "guard_unassessed"):
        return [
            stop(
                f"{facet} improved but a guard is not shown within the margin{needed}",
                f"ask a person for more or fresh data ({MORE_DATA}); --no-guard is a person's call",
            )
        ]
    return [stop(f"the rows cannot tell for {facet}{needed}", f"ask a person for {MORE_DATA}")]


def compare_next_steps(report: CompareReport) -> list[NextStep]:
    if report.label_changed:
        return [
            stop(
                f"{report.label_changed} rows' labels changed between the runs: re-run the baseline",
                "rows whose label changed are left out; the baseline must be scored on the current labels",
            )
        ]
    over = sorted(f for f, n in report.validation_evals.items() if n > EXPERIMENT_BUDGET)
    if over and not report.final_check:
        return [
            stop(
                f"validation has been evaluated too often for {', '.join(over)}: ask for fresh rows",
                f"past the budget of {EXPERIMENT_BUDGET} validation evals",
            )
        ]
    changed = {d.facet_name for d in report.prompt_diffs if d.changed}
    decided: list[FacetComparison] = [
        c for c in report.facets if (c.facet_name in changed) or (report.facet and len(report.facets) == 1)
    ]
    if not decided:
        return [
            stop(
                "no facet prompt differs between the two runs: nothing to decide",
                "compare a baseline with a candidate whose prompt changed",
            )
        ]
    test_facets = set(report.candidate.test_facets or [])
    steps: list[NextStep] = []
    for comparison in decided:
        for step in _verdict_steps(
            comparison.facet_name,
            comparison.verdict,
            comparison.rule,
            comparison.rows_needed,
            comparison.rows_needed_by_metric,
            report.final_check,
            comparison.facet_name in test_facets,
            report.target,
        ):
            if step not in steps:
                steps.append(step)
    return steps


def publish_next_steps(result: PublishResult) -> list[NextStep]:
    missing = [e for e in result.evidence if e.status != "evaluated"]
    if result.forced:
        return [stop("published with --force, without evidence: tell the person", "; ".join(result.warnings))]
    if missing:
        steps = [
            stop(
                f"{e.facet_name} lacks evidence ({e.status}): do not publish",
                f"{e.message}; --force is a person's decision, never an agent's",
            )
            for e in missing
            if e.status not in ("never_evaluated", "never_compared")
        ]
        for e in missing:
            if e.status == "never_compared":  # evaluated, but no comparison made it a candidate
                steps.append(
                    run(
                        f"facetopt compare previous latest --facet {_q(e.facet_name)}",
                        f"{e.message}; compare it against its baseline (name the baseline by id if "
                        "previous is not it)",
                    )
                )
        never = [e.facet_name for e in missing if e.status == "never_evaluated"]
        if never:
            steps.append(
                run(
                    "facetopt eval --split validation",
                    f"the current prompt of {', '.join(never)} was never evaluated with real labels: "
                    "evaluate it, then compare it against its baseline",
                )
            )
        return steps
    facets = [f.facet_name for f in result.functions]
    if result.dry_run:
        return [
            run(
                f"facetopt publish {_facets(facets)}",
                "the evidence holds; publishing changes production: run it when a person agrees",
            )
        ]
    return [stop("done: published", "tell the person which functions changed (functions[].slug)")]


def audit_next_steps(report: AuditReport) -> list[NextStep]:
    broken = [f for f in report.facets if f.broken]
    if broken:  # the second opinion failed, not the labels: nothing to review yet
        return [
            stop(
                f"the audit of {', '.join(f.facet_name for f in broken)} is broken: check the second "
                "opinion's model, endpoint and answer format, then audit again",
                "; ".join(f.broken or "" for f in broken),
            )
        ]
    noisy = [f for f in report.facets if f.warning]
    if noisy:
        return [
            stop(
                f"labels look noisy for {', '.join(f.facet_name for f in noisy)}: ask a person to review them",
                "; ".join(f.warning or "" for f in noisy)
                + "; a person decides labels (offer `facetopt dataset review export review.yaml`)",
            )
        ]
    if len(report.simulated_roles) == 1:
        return [
            stop(
                f"the {report.simulated_roles[0]} is simulated and the other labeller is real",
                "such agreement means nothing: ask a person for a real endpoint for both",
            )
        ]
    failed = sum(f.failed for f in report.facets)
    if failed:
        return [run("facetopt dataset audit", f"{failed} second opinions failed; answers are cached")]
    return [run("facetopt eval --split validation", "the labels hold up: the baseline on validation")]


def optimize_next_steps(report: OptimizeReport) -> list[NextStep]:
    if report.winner is None or report.verdict is None:
        why = report.stopped or "no candidate beat the baseline on train"
        return [stop("no candidate reached validation", f"{why}; a person decides on more budget or data")]
    if report.verdict == "KEEP" and not report.applied:
        return [
            stop(
                f"KEEP for {report.facet}, not applied: ask a person whether to apply it",
                f"the kept prompt is in {report.candidate_file}; the prompt file changes only on their say",
            )
        ]
    return _verdict_steps(
        report.facet, report.verdict, report.rule or "", None, {}, False, False, report.target
    )
