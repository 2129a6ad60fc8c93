"""The end of an optimisation: the winner's one validation eval (and the baseline's when none
exists), the verdict by the compare rules, and the prompt file changed only with --apply and KEEP;
otherwise the winner waits in the run folder as candidate.yaml with its diff."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from facetopt.clients.prompt_file import PromptDocument, load_prompt_file, save_prompt_file
from facetopt.domain.experiments import ExperimentRecord
from facetopt.errors import InputError
from facetopt.services.eval.record import EvalSummary
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.experiments.compare import CompareReport, compare_experiments
from facetopt.services.experiments.decisions import record_comparison
from facetopt.services.experiments.registry import Experiments, filter_rows, in_scope, open_experiments
from facetopt.services.progress import Progress
from facetopt.settings import Settings

VALIDATION = "validation"


def candidate_document(prompt_path: Path, facet: str, text: str) -> PromptDocument:
    """The prompt file with the facet's prompt replaced (comments and layout kept)."""
    document = load_prompt_file(prompt_path)
    document.set_prompt_text(facet, text)
    return document


def write_candidate(run_dir: Path, document: PromptDocument, facet: str, before: str, after: str) -> str:
    """candidate.yaml (a whole prompt file, usable as --prompt) and candidate.diff; the diff."""
    save_prompt_file(document, run_dir / "candidate.yaml")
    diff = "\n".join(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            f"{facet} (baseline)",
            f"{facet} (candidate)",
            lineterm="",
        )
    )
    (run_dir / "candidate.diff").write_text(diff + "\n", encoding="utf-8")
    return diff


def existing_validation_eval(experiments: Experiments, facet: str, sha: str) -> ExperimentRecord | None:
    """The newest complete validation run of this dataset whose prompt for `facet` had `sha` and
    that scored the facet's validation rows."""
    scope = experiments.scope(VALIDATION)
    for record in experiments.records():
        hashes = {name.casefold(): value for name, value in record.prompt_hashes.items()}
        if not in_scope(record, scope) or record.status != "complete" or hashes.get(facet.casefold()) != sha:
            continue
        if filter_rows(experiments.rows(record), VALIDATION, facet):
            return record
    return None


def validation_eval(
    settings: Settings,
    facet: str,
    prompt_path: Path,
    progress: Progress,
    announce: Callable[[str], None],
    warn: Callable[[str], None],
) -> EvalSummary:
    """One `facetopt eval --split validation --facet FACET --prompt PROMPT_PATH`."""
    changed = {"split": VALIDATION, "prompt": prompt_path, "max_rows": None}
    return run_eval(
        settings.model_copy(update=changed),
        options=EvalOptions(facets=[facet]),
        progress=progress,
        announce=announce,
        warn=warn,
    )


def compare_on_validation(
    settings: Settings,
    baseline_id: str,
    candidate_id: str,
    target: str,
    facet: str,
    warn: Callable[[str], None],
) -> CompareReport:
    with open_experiments(settings) as experiments:
        report = compare_experiments(
            experiments, baseline_id, candidate_id, target=target, split=VALIDATION, facet=facet
        )
    return record_comparison(settings.store_path, report, warn)


def apply_winner(prompt_path: Path, facet: str, baseline_sha: str, text: str) -> None:
    """The winner into the prompt file, unless the facet's prompt changed since the run began."""
    document = load_prompt_file(prompt_path)
    if document.facet(facet).prompt_sha256 != baseline_sha:
        raise InputError(
            f"the {facet} prompt in {prompt_path} changed while optimize ran: the winner was not applied",
            hint="the winner is in the run folder's candidate.yaml; compare it with your edit by hand",
        )
    document.set_prompt_text(facet, text)
    save_prompt_file(document)
