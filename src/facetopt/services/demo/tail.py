"""The demo's last steps: the label audit (`facetopt dataset audit`) and the decision page of its
comparison (`facetopt report`)."""

from __future__ import annotations

from facetopt.domain.audit import AuditReport
from facetopt.services.demo.steps import DemoSteps
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.report import decision_report, write_report_page
from facetopt.settings import SIMULATED_BASE_URL, Settings


def audit_step(settings: Settings, steps: DemoSteps, flags: list[str]) -> AuditReport:
    """A second opinion on the validation labels: the simulated labeller's planted mistakes show up
    as disagreements (review them with `dataset review export|apply`; the demo leaves that to you)."""
    from facetopt.services.dataset.audit import audit_dataset

    steps.step(
        "10. Audit the ground truth: a second opinion on every validation label",
        [
            "facetopt",
            "dataset",
            "audit",
            "--split",
            "validation",
            *flags,
            "--audit-api-base",
            SIMULATED_BASE_URL,
        ],
    )
    audit = audit_dataset(
        settings.model_copy(update={"audit_api_base": SIMULATED_BASE_URL}), split="validation"
    )
    steps.show("audit", audit.report)
    return audit.report


def report_step(
    settings: Settings, steps: DemoSteps, comparison_id: str | None, flags: list[str], number: int
) -> str | None:
    """Write the page where `facetopt report` puts it by default; its path (None: nothing recorded)."""
    if comparison_id is None:
        return None
    steps.step(
        f"{number}. The decision page: verdicts, forest plot, flipped rows, prompt diff, audit (one HTML file)",
        ["facetopt", "report", comparison_id, *flags],
    )
    with open_experiments(settings) as experiments:
        page = decision_report(experiments, comparison_id)
    page = write_report_page(page, settings.output_root / "reports" / f"report-{comparison_id}.html")
    steps.show("report", page)
    return page.html
