"""`facetopt dataset audit`: a second opinion on every label, and agreement per facet.

The second opinion goes through the same cached, concurrent labelling client as `dataset create`
(labelling.label_requests), with a different request (audit_requests.py): another model when one
is given (`--second-model`, FACET_OPTIMIZER_AUDIT_MODEL), else the labelling model again, which
makes the audit a self-consistency check.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from facetopt.clients import artifacts
from facetopt.clients.llm.client import Endpoint, resolve_auditor
from facetopt.domain.audit import AuditedRow, AuditReport, FacetAudit
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import InputError
from facetopt.facets.data.text import is_none_like
from facetopt.facets.decide.agreement import (
    INTERVAL_METHOD,
    KAPPA_WARN_BELOW,
    MIN_KAPPA_ROWS,
    broken_second_opinion,
    cohen_kappa,
    decision_table,
    kappa_too_low,
    one_answer,
    same_text,
)
from facetopt.facets.decide.scorers import SENTIMENT_FACET, sentiment_label
from facetopt.services.backends import Backend, open_backend
from facetopt.services.cost import UsageMeter, max_cost_error, max_cost_warning
from facetopt.services.dataset.audit_requests import (
    audit_request,
    load_audit_prompts,
    prompt_for_row,
    prompt_history,
)
from facetopt.services.dataset.create import SIMULATED_PREFIX
from facetopt.services.dataset.labelling import label_requests
from facetopt.services.experiments.holdout import record_test_touch
from facetopt.services.progress import Progress, SilentProgress
from facetopt.settings import Settings

ALL_SPLITS = "all"
TEST = "test"


@dataclass
class AuditOutcome:
    report: AuditReport
    rows: list[AuditedRow] = field(default_factory=list)  # every audited row, in id order
    dataset_rows: dict[str, DatasetRow] = field(default_factory=dict)


def select_rows(
    rows: list[DatasetRow], facet: str | None, split: str | None, sample: int | None, seed: int
) -> list[DatasetRow]:
    chosen = [
        r
        for r in rows
        if (not facet or r.facet_name.casefold() == facet.casefold())
        and (split == ALL_SPLITS or (r.split or "train") == split if split else r.split != TEST)
    ]
    if sample is not None and sample < len(chosen):
        chosen = random.Random(seed).sample(sorted(chosen, key=lambda r: r.id), sample)
    return sorted(chosen, key=lambda r: r.id)


def _labeller_model(rows: list[DatasetRow]) -> str:
    models = Counter(str(r.metadata.get("ground_truth_model") or "") for r in rows)
    return models.most_common(1)[0][0] if models else ""


def audit_dataset(
    settings: Settings,
    *,
    facet: str | None = None,
    split: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    announce: Callable[[str], None] | None = None,
    backend: Backend | None = None,
    command: str = "dataset audit",
    all_rows: list[DatasetRow] | None = None,
) -> AuditOutcome:
    """`all_rows`: the dataset's rows when the caller has read them already."""
    progress = progress or SilentProgress()
    if sample is not None and sample < 1:
        raise InputError("--sample must be at least 1", hint="leave it out to audit every row")
    backend = backend if backend is not None else open_backend(settings, announce)
    project = settings.require("target_project", "--target-project", "FACET_OPTIMIZER_TARGET_PROJECT")
    dataset = settings.require("dataset", "--dataset", "FACET_OPTIMIZER_DATASET")
    if all_rows is None:
        all_rows = backend.dataset_rows(project, dataset, must_exist=True)
    rows = select_rows(all_rows, facet, split, sample, seed)
    if not rows:
        known = ", ".join(sorted({r.facet_name for r in all_rows})) or "none"
        raise InputError(
            f"no rows of dataset {dataset!r} match --facet {facet or '(any)'} --split {split or '(train and validation)'}",
            hint=f"facets in the dataset: {known}; splits: train, validation, test",
        )
    endpoint = resolve_auditor(settings)
    labeller_model = _labeller_model(rows)
    kind = (
        "second-model"
        if settings.audit_model and settings.audit_model != labeller_model.removeprefix(SIMULATED_PREFIX)
        else "self-consistency"
    )
    facets, prompt_path = load_audit_prompts(settings.prompt_path, settings.output_root)
    history = prompt_history(
        settings.store_path, {str(r.metadata.get("facet_prompt_sha256") or "") for r in rows} - {""}
    )
    report = AuditReport(
        backend=backend.name,
        target_project=project,
        dataset=dataset,
        kind=kind,
        labeller_model=labeller_model,
        second_model=endpoint.model,
        second_endpoint=endpoint.label,
        interval_method=INTERVAL_METHOD,
        split=split,
        facet=facet,
        sampled=sample,
    )
    requests, patterns, missing_facets, old_prompts = {}, {}, set(), 0
    for row in rows:
        prompt, exact = prompt_for_row(row, facets, history)
        if prompt is None:
            missing_facets.add(row.facet_name)
            continue
        old_prompts += not exact
        patterns[row.id] = prompt.no_match_pattern
        requests[row.id] = audit_request(prompt, row, endpoint, settings.ground_truth_max_tokens)
    run_dir = artifacts.new_run_dir(settings.output_root / "audits")
    report.run_dir = str(run_dir)
    held_out = sum(r.split == TEST for r in all_rows) if not split else 0
    looks = {r.facet_name: prompt_for_row(r, facets, history)[0] for r in rows if r.split == TEST}
    hashes = {name: prompt.prompt_sha256 for name, prompt in looks.items() if prompt is not None}
    if hashes:  # a look at the holdout, recorded like an eval on test
        record_test_touch(settings, project, dataset, hashes, f"audit:{run_dir.name}", command, False)
    progress.stage(f"second opinions on {len(requests)} rows from {endpoint.model} ({endpoint.label})")
    meter = UsageMeter.of("auditor", endpoint.model, settings)
    outcome = label_requests(
        requests,
        endpoint,
        settings.store_path,
        run_dir / "second_opinions.jsonl",
        concurrency=settings.ground_truth_concurrency,
        timeout=settings.timeout_for(endpoint.model),
        deadline=settings.call_deadline,
        progress=progress,
        stage="auditing",
        meter=meter,
    )
    report.labels_paid, report.labels_from_cache = outcome.paid, outcome.from_cache
    report.usage, report.max_cost = [meter.usage], settings.max_cost
    if outcome.not_sent and not outcome.labels:
        raise max_cost_error(settings.max_cost, "second-opinion", meter.refused)
    audited = [
        audited_row(row, outcome.labels.get(row.id), outcome.failures.get(row.id), patterns.get(row.id))
        for row in rows
        if row.id in requests
    ]
    report.facets = facet_audits(audited)
    report.disagreeing = [r for r in audited if r.disagrees]
    report.copies = [r for r in audited if r.copies_production]
    report.simulated_roles = _simulated_roles(endpoint, labeller_model)
    report.warnings = _warnings(report, endpoint, missing_facets, old_prompts, prompt_path)
    if held_out:
        report.warnings.append(
            f"{held_out} test rows were left out (the holdout); pass --split test to include them "
            "(recorded as a look at the test split)"
        )
    elif hashes:
        report.warnings.append(
            f"test rows of {len(hashes)} facet(s) were read: recorded as a look at the test split "
            "(see `facetopt inspect experiments`)"
        )
    if outcome.store_error:
        report.warnings.append(outcome.store_error)
    if outcome.not_sent:
        report.warnings.append(max_cost_warning(settings.max_cost, outcome.not_sent, "second-opinion", meter))
    artifacts.write_jsonl(run_dir / "audited_rows.jsonl", audited)
    artifacts.write_json(run_dir / "audit.json", report)
    return AuditOutcome(report=report, rows=audited, dataset_rows={r.id: r for r in rows})


def audited_row(row: DatasetRow, second: str | None, error: str | None, pattern: str | None) -> AuditedRow:
    production = row.metadata.get("production_output")
    audited = AuditedRow(
        id=row.id,
        facet_name=row.facet_name,
        split=row.split,
        expected=row.expected,
        second_opinion=second,
        production_output=None if production is None else str(production),
        permalink=row.metadata.get("source_trace_permalink"),
        error=None if second is not None else (error or "no second opinion"),
    )
    if second is None:
        return audited
    audited.expected_positive = not is_none_like(row.expected, pattern)
    audited.second_positive = not is_none_like(second, pattern)
    audited.decision_agrees = audited.expected_positive == audited.second_positive
    if row.facet_name.strip().casefold() == SENTIMENT_FACET:
        mine, theirs = sentiment_label(row.expected), sentiment_label(second)
        if mine is not None and theirs is not None:
            audited.label_agrees = mine == theirs
    audited.copies_production = bool(
        audited.production_output
        and same_text(row.expected, audited.production_output)
        and not same_text(second, row.expected)
    )
    return audited


def facet_audits(rows: list[AuditedRow]) -> list[FacetAudit]:
    by_facet: dict[str, list[AuditedRow]] = defaultdict(list)
    for row in rows:
        by_facet[row.facet_name].append(row)
    return [facet_audit(name, by_facet[name]) for name in sorted(by_facet, key=str.casefold)]


def facet_audit(name: str, rows: list[AuditedRow]) -> FacetAudit:
    answered = [r for r in rows if r.second_opinion is not None]
    audit = FacetAudit(facet_name=name, rows=len(answered), failed=len(rows) - len(answered))
    audit.copies = sum(r.copies_production for r in answered)
    audit.disagreements = sum(r.disagrees for r in answered)
    labelled = [r for r in answered if r.label_agrees is not None]
    audit.sentiment_rows = len(labelled)
    if labelled:
        audit.sentiment_label_agreement = sum(bool(r.label_agrees) for r in labelled) / len(labelled)
    if not answered:
        audit.kappa_note = "no second opinions"
        return audit
    audit.decision_agreement = sum(bool(r.decision_agrees) for r in answered) / len(answered)
    broken = broken_second_opinion(
        [r.expected for r in answered],
        [r.second_opinion or "" for r in answered],
        [bool(r.expected_positive) for r in answered],
        [bool(r.second_positive) for r in answered],
    )
    if broken:
        audit.broken = broken
        audit.kappa_note = "broken audit: no kappa"
        audit.warning = (
            f"broken audit of {name}: {broken}. This is the second opinion failing, not label noise: "
            "check the second model and its endpoint (--second-model, --audit-api-base), that it answers "
            "with a bare value or the facet's no-match word as the prompt asks, and its raw answers in "
            "second_opinions.jsonl under the artifacts folder"
        )
        return audit
    if len(answered) < MIN_KAPPA_ROWS:
        audit.kappa_note = f"under {MIN_KAPPA_ROWS} rows: no kappa"
        return audit
    constant = one_answer([r.second_opinion or "" for r in answered])
    if constant is not None and not all(same_text(r.expected, constant) for r in answered):
        audit.kappa_note = (
            f"second opinion {constant[:30]!r} on every row: kappa 0 by construction, not shown"
        )
        return audit
    kappa = cohen_kappa(
        decision_table(
            [bool(r.expected_positive) for r in answered], [bool(r.second_positive) for r in answered]
        )
    )
    if kappa.kappa is None:
        audit.kappa_note = "both labellers gave one class only: kappa undefined"
        return audit
    audit.kappa, audit.kappa_low, audit.kappa_high = kappa.kappa, kappa.ci_low, kappa.ci_high
    if kappa_too_low(kappa):
        audit.warning = (
            f"{name}: kappa {kappa.kappa:.2f} (95% interval {kappa.ci_low:.2f} to {kappa.ci_high:.2f}) lies "
            f"under {KAPPA_WARN_BELOW}: this facet's metrics measure label noise as much as the model"
        )
    return audit


def _simulated_roles(endpoint: Endpoint, labeller_model: str) -> list[str]:
    roles = ["labeller"] if labeller_model.startswith(SIMULATED_PREFIX) else []
    return roles + (["auditor"] if endpoint.simulated else [])


def _warnings(
    report: AuditReport,
    endpoint: Endpoint,
    missing_facets: set[str],
    old_prompts: int,
    prompt_path: object,
) -> list[str]:
    warnings = [endpoint.key_note] if endpoint.key_note else []
    if report.kind == "self-consistency":
        warnings.append(
            f"self-consistency check: {endpoint.model} was asked again with a re-worded request; blind "
            "spots it has are shared by both labels, so this agreement is an upper bound (pass "
            "--second-model for an independent opinion)"
        )
    roles = report.simulated_roles
    if roles and len(roles) == 1:
        real = "auditor" if roles == ["labeller"] else "labeller"
        warnings.append(
            f"SIMULATED {roles[0]} while the {real} is a real model: this agreement is not meaningful"
        )
    elif roles:
        warnings.append(
            "second opinions come from the SIMULATED model (no model key configured, or simulated://)"
        )
    if missing_facets:
        warnings.append(
            f"facets not in the prompt file {prompt_path} were not audited: {', '.join(sorted(missing_facets))}"
        )
    if old_prompts:
        warnings.append(
            f"{old_prompts} rows were labelled with a prompt version not in the prompt history; they were "
            f"asked with the current prompt of {prompt_path}"
        )
    warnings.extend(f.warning for f in report.facets if f.warning)
    failed = sum(f.failed for f in report.facets)
    if failed:
        warnings.append(f"{failed} rows got no second opinion (re-run to retry them; answers are cached)")
    return warnings
