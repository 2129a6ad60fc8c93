"""Gather a decision page's data: the comparison (as recorded, or computed again for an older one),
per facet the confusion counts of both runs on the paired rows, the rows that flipped, failure
examples from a train run, and the dataset's newest label audit and optimiser run."""

from __future__ import annotations

from datetime import UTC, datetime

from facetopt.domain.experiments import ComparisonRecord, EvalRow, ExperimentRecord, FacetComparison
from facetopt.errors import NotFoundError
from facetopt.facets.decide.metrics import facet_metrics, row_score
from facetopt.facets.decide.verdict import target_rule
from facetopt.services.experiments.compare import CompareReport, compare_experiments, statistics_pairs
from facetopt.services.experiments.decisions import comparison_path
from facetopt.services.experiments.inspect import failure_kind
from facetopt.services.experiments.registry import Experiments, filter_rows
from facetopt.services.report.extras import newest_audit, newest_optimize, read_compare_report
from facetopt.services.report.model import (
    DecisionReport,
    DiscordantRow,
    FacetPage,
    ForestPoint,
    TrainFailure,
)

DISCORDANT_SHOWN = 12  # per facet; the counts above the table say how many there are
TRAIN_EXAMPLES = 5
LATEST = "latest"


def decision_report(experiments: Experiments, reference: str | None = None) -> DecisionReport:
    """The page of a recorded comparison: an id, an id prefix, or latest (the newest)."""
    record = find_comparison(experiments, reference)
    saved = read_compare_report(comparison_path(experiments.settings.store_path, record.comparison_id))
    notes = []
    if saved is None:
        saved = compare_experiments(
            experiments,
            record.baseline_experiment_id,
            record.candidate_experiment_id,
            target=record.target,
            split=record.split,
            facet=record.facet,
            guard_margin=record.guard_margin if record.guard_margin is not None else record.tolerance,
            no_guard=record.no_guard,
        ).model_copy(update={"comparison_id": record.comparison_id})
        notes.append(
            "this comparison was recorded before facetopt kept a comparison's data: it was computed "
            "again from its two experiments with the recorded target, split, facet and margin"
        )
        changed = _verdicts(saved) != {d.facet_name: d.verdict for d in record.decisions}
        if changed:
            notes.append(
                "computed again, the verdicts differ from the recorded ones (the rule changed since)"
            )
    return report_for_compare(experiments, saved, source="recomputed" if notes else "recorded", notes=notes)


def report_for_compare(
    experiments: Experiments, report: CompareReport, source: str = "recorded", notes: list[str] | None = None
) -> DecisionReport:
    """The page of a comparison in hand (`compare --html`)."""
    rule = target_rule(report.target)
    baseline_rows = filter_rows(experiments.rows(report.baseline), report.split, report.facet)
    candidate_rows = filter_rows(experiments.rows(report.candidate), report.split, report.facet)
    left, right = statistics_pairs(baseline_rows, candidate_rows)
    comparisons = report.facets if report.facets else [report.overall]
    train_run = _train_run(experiments, report)
    facets = [
        _facet_page(comparison, left, right, experiments, train_run, report) for comparison in comparisons
    ]
    return DecisionReport(
        comparison_id=report.comparison_id or "(not recorded)",
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        source=source,
        target_metric=rule.metric,
        guards=list(rule.guards),
        guard_margin=_margin(report),
        compare=report,
        forest=forest_points(report),
        facets=facets,
        audit=newest_audit(experiments.settings.output_root, report.candidate.dataset),
        optimize=newest_optimize(
            experiments.settings.output_root, report.candidate.dataset, report.candidate
        ),
        notes=list(notes or []),
    )


def find_comparison(experiments: Experiments, reference: str | None) -> ComparisonRecord:
    store = experiments.store
    records = sorted(store.comparisons(), key=lambda r: r.created) if store is not None else []
    if not records:
        raise NotFoundError(
            f"no comparison is recorded under {experiments.settings.output_root}",
            hint="run `facetopt compare previous latest` first (check --output-root)",
        )
    if reference is None or reference.strip().lower() == LATEST:
        return records[-1]
    wanted = reference.strip()
    found = [r for r in records if r.comparison_id == wanted] or [
        r for r in records if r.comparison_id.startswith(wanted)
    ]
    if len(found) == 1:
        return found[0]
    newest = ", ".join(r.comparison_id for r in records[-3:][::-1])
    if found:
        raise NotFoundError(
            f"comparison prefix {wanted!r} matches {len(found)} comparisons",
            hint="give more of the id; `facetopt inspect experiments` lists the comparisons",
        )
    raise NotFoundError(
        f"no recorded comparison {wanted!r}",
        hint=f"the newest: {newest} (or leave it out for the newest)",
    )


def forest_points(report: CompareReport) -> list[ForestPoint]:
    rule = target_rule(report.target)
    comparisons = list(report.facets)
    if len(comparisons) != 1:
        comparisons.append(report.overall)
    points = []
    for comparison in comparisons:
        for delta in comparison.deltas:
            if delta.delta is None:
                continue
            role = (
                "target"
                if delta.metric == rule.metric
                else "guard"
                if delta.metric in rule.guards
                else "shown"
            )
            points.append(
                ForestPoint(
                    facet_name=comparison.facet_name,
                    metric=delta.metric,
                    role=role,
                    delta=delta.delta,
                    ci_low=delta.ci_low,
                    ci_high=delta.ci_high,
                    n=delta.n,
                    verdict=comparison.verdict,
                )
            )
    return points


def _facet_page(
    comparison: FacetComparison,
    left: list[EvalRow],
    right: list[EvalRow],
    experiments: Experiments,
    train_run: ExperimentRecord | None,
    report: CompareReport,
) -> FacetPage:
    name = comparison.facet_name
    pairs = [
        (b, c) for b, c in zip(left, right, strict=True) if name == "overall" or _same(b.facet_name, name)
    ]
    flipped = [_discordant(b, c) for b, c in pairs]
    flipped_rows = [row for row in flipped if row is not None]
    fixed = [row for row in flipped_rows if row.direction == "fixed"]
    broken = [row for row in flipped_rows if row.direction == "broken"]
    page = FacetPage(
        facet_name=name,
        verdict=comparison.verdict,
        rule=comparison.rule,
        reasons=comparison.reasons,
        paired_rows=comparison.paired_rows,
        baseline=facet_metrics([b for b, _ in pairs], name),
        candidate=facet_metrics([c for _, c in pairs], name),
        fixed=len(fixed),
        broken=len(broken),
        discordant=(broken + fixed)[:DISCORDANT_SHOWN],
    )
    _add_train_failures(page, experiments, train_run, report)
    return page


def _discordant(baseline: EvalRow, candidate: EvalRow) -> DiscordantRow | None:
    before = row_score(baseline, "binary_decision_match")
    after = row_score(candidate, "binary_decision_match")
    if before is None or after is None or before == after:
        return None
    permalink = candidate.metadata.get("source_trace_permalink") or baseline.metadata.get(
        "source_trace_permalink"
    )
    return DiscordantRow(
        id=baseline.id,
        direction="fixed" if after > before else "broken",
        expected=baseline.expected,
        baseline_output=baseline.output,
        candidate_output=candidate.output,
        permalink=str(permalink) if permalink else None,
    )


def _train_run(experiments: Experiments, report: CompareReport) -> ExperimentRecord | None:
    """The newest complete run over train rows of the same dataset with the candidate's prompts (else
    the baseline's): the only place the page takes failure texts from."""
    runs = [
        r
        for r in experiments.registry()
        if r.dataset == report.candidate.dataset
        and (r.split or "").strip().lower() == "train"
        and r.status == "complete"
    ]
    for wanted in (report.candidate.prompt_hashes, report.baseline.prompt_hashes):
        for run in sorted(runs, key=lambda r: r.created, reverse=True):
            if any(run.prompt_hashes.get(k) == v for k, v in wanted.items()):
                return run
    return None


def _add_train_failures(
    page: FacetPage, experiments: Experiments, run: ExperimentRecord | None, report: CompareReport
) -> None:
    if page.facet_name == "overall":
        return
    if run is None:
        page.train_note = (
            "no train run of these prompts is recorded: `facetopt eval --split train --facet "
            f"{page.facet_name}` gives examples (the page shows no validation or test texts)"
        )
        return
    rows = [r for r in filter_rows(experiments.rows(run), "train", page.facet_name) if failure_kind(r)]
    page.train_experiment_id = run.experiment_id
    page.train_failures = [
        TrainFailure(id=r.id, kind=failure_kind(r) or "error", expected=r.expected, output=r.output)
        for r in rows[:TRAIN_EXAMPLES]
    ]
    if not rows:
        page.train_note = f"no failure of this facet in train run {run.experiment_name} ({run.experiment_id})"


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _verdicts(report: CompareReport) -> dict[str, str]:
    return {c.facet_name: c.verdict for c in [*report.facets, report.overall]}


def _margin(report: CompareReport) -> float:
    return report.guard_margin
