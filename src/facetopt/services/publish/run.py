"""`facetopt publish`: the prompt file's facets become Braintrust facet functions, after an
evidence check, and are read back to prove that what runs in production is what was sent.

On the local backend nothing is sent: the definitions are written to a file under the output root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from facetopt.clients.prompt_file import FacetPrompt, PromptDocument
from facetopt.domain.next_steps import NextStep
from facetopt.errors import InputError
from facetopt.facets.prompts.publishing import (
    DEFAULT_SLUG_PREFIX,
    function_definition,
    function_name,
    function_slug,
)
from facetopt.services.backends.publishers import FunctionStatus, Publisher
from facetopt.services.experiments.registry import Experiments, open_experiments
from facetopt.services.publish.evidence import (
    DecisionLookup,
    FacetEvidence,
    facet_evidence,
    recorded_decisions,
)
from facetopt.settings import Settings

Outcome = Literal["published", "written", "would_publish", "would_refuse", "unverified"]


class PublishRequest(BaseModel):
    facets: list[str] = Field(default_factory=list)  # empty: every facet of the prompt file
    facet_name: str | None = None  # the function's name; only with one facet
    slug: str | None = None  # only with one facet
    slug_prefix: str = DEFAULT_SLUG_PREFIX
    model: str = "brain-facet-1"
    if_exists: Literal["error", "replace", "ignore"] = "replace"
    project: str = "Facet Optimizer"
    version: str | None = None  # FACET_OPTIMIZER_FACET_VERSION, recorded in metadata
    dry_run: bool = False
    force: bool = False


class PublishedFunction(BaseModel):
    facet_name: str
    name: str
    slug: str
    prompt_sha256: str
    status: FunctionStatus
    function_id: str | None = None
    evidence_experiments: list[str] = Field(default_factory=list)
    problem: str | None = None  # unverified: inserted, but the read-back failed or differs


class PublishResult(BaseModel):
    backend: str
    project: str
    project_id: str | None = None
    prompt_file: str
    dry_run: bool
    forced: bool
    evidence: list[FacetEvidence]
    functions: list[PublishedFunction]
    definitions: list[dict[str, Any]]
    output_file: str | None = None
    warnings: list[str] = Field(default_factory=list)
    outcome: Outcome = "published"
    reason: str | None = None  # why it (would be) refused, or why a function is unverified
    hint: str | None = None
    next_steps: list[NextStep] = Field(default_factory=list)  # what to do now (services/next_steps.py)


PublicationRecorder = Callable[[PublishedFunction, str, str], None]  # (function, backend, project)


def run_publish(
    doc: PromptDocument,
    request: PublishRequest,
    experiments: Experiments,
    publisher: Publisher,
    record: PublicationRecorder,
    decision_for: DecisionLookup | None = None,
) -> PublishResult:
    """Check the evidence (the dry run reads the same as the real run), then publish and read back.

    The real run raises its refusal; the dry run returns it as `would_refuse`. Once functions are
    inserted, the result says so whatever fails after (an unverified read-back is reported, not raised)."""
    facets = _chosen_facets(doc, request)
    evidence = [facet_evidence(experiments, f.facet_name, f.prompt_sha256, decision_for) for f in facets]
    missing = [e for e in evidence if not e.sufficient]
    warnings = [f"{e.facet_name}: {e.message}" for e in missing]
    refusal = None if request.force or not missing else evidence_refusal(missing)
    if refusal is not None and not request.dry_run:
        raise refusal  # before anything is written (the project registration included)
    project_id = None if request.dry_run else publisher.project_id(request.project)
    definitions = [
        _definition(doc, request, f, e, project_id, len(facets) == 1)
        for f, e in zip(facets, evidence, strict=True)
    ]
    if refusal is None and request.dry_run:
        refusal = publisher.refusal(definitions, request.project, request.if_exists)
    result = PublishResult(
        backend=publisher.backend,
        project=request.project,
        project_id=project_id,
        prompt_file=str(doc.path),
        dry_run=request.dry_run,
        forced=request.force and bool(missing),
        evidence=evidence,
        functions=[],
        definitions=definitions,
        warnings=warnings,
    )
    if request.dry_run:
        decision: Literal["would_refuse", "would_publish"] = "would_refuse" if refusal else "would_publish"
        result.outcome = decision
        if refusal is not None:
            result.reason, result.hint = refusal.message, refusal.hint
        result.functions = [
            _function(d, e, None, decision) for d, e in zip(definitions, evidence, strict=True)
        ]
        return result
    outcomes, written = publisher.publish(definitions, request.if_exists, result.warnings)
    result.output_file = written
    result.outcome = "written" if written else "published"
    for definition, facet_evidence_, (function_id, status, problem) in zip(
        definitions, evidence, outcomes, strict=True
    ):
        function = _function(definition, facet_evidence_, function_id, status)
        function.problem = problem
        result.functions.append(function)
        if status == "unverified":
            result.outcome = "unverified"
            result.reason = f"{function.slug}: {problem}"
            result.hint = "the function was inserted: inspect it in the Braintrust UI, then publish again"
            continue
        try:
            record(function, publisher.backend, request.project)
        except Exception as error:  # production changed: a local bookkeeping failure must not hide it
            result.warnings.append(f"{function.slug} was published but not recorded locally: {error}")
    return result


def publish_prompt_file(
    settings: Settings, request: PublishRequest, prompt_path: Path, announce: Callable[[str], None]
) -> PublishResult:
    """`facetopt publish`: read the prompt file, publish on the settings' backend, then record
    each function published in the store (after the registry is closed: one writer at a time)."""
    from facetopt.clients.prompt_file import load_prompt_file

    doc = load_prompt_file(prompt_path)
    recorded: list[tuple[PublishedFunction, str, str]] = []
    with open_experiments(settings, announce) as experiments:
        result = run_publish(
            doc,
            request,
            experiments,
            experiments.backend.publisher(),
            record=lambda function, backend, project: recorded.append((function, backend, project)),
            decision_for=recorded_decisions(experiments.store),
        )
    if recorded:
        record_publications(settings.store_path, recorded, result.warnings)
    return result


def record_publications(
    store_path: Path, recorded: list[tuple[PublishedFunction, str, str]], warnings: list[str]
) -> None:
    """Remember what was published; a busy or broken store is a warning (production changed anyway)."""
    from facetopt.clients.local.store import LocalStore

    try:
        with LocalStore(store_path) as store:
            for function, backend_name, project_name in recorded:
                store.record_publication(
                    function.prompt_sha256,
                    function.facet_name,
                    backend_name,
                    project_name,
                    function.slug,
                    function.function_id,
                    function.evidence_experiments,
                )
    except Exception as error:
        message = getattr(error, "message", None) or str(error)
        warnings.append(f"published, but not recorded in the local store: {message}")


def evidence_refusal(missing: list[FacetEvidence]) -> InputError:
    """The refusal for facets without evidence: the reasons, and per facet the step that can succeed."""
    hints = [f"{e.facet_name}: {e.hint}" for e in missing if e.hint]
    return InputError(
        "not published: " + "; ".join(f"{e.facet_name}: {e.message}" for e in missing),
        hint="; ".join(hints) or "pass --force to publish without that evidence (a person's decision)",
    )


def _chosen_facets(doc: PromptDocument, request: PublishRequest) -> list[FacetPrompt]:
    facets = [doc.facet(name) for name in request.facets] if request.facets else list(doc.facets)
    if len(facets) != 1:
        for flag, value in (("--facet-name", request.facet_name), ("--slug", request.slug)):
            if value:
                raise InputError(
                    f"{flag} names one function, but {len(facets)} facets would be published",
                    hint="add --facet NAME to publish one facet",
                )
    return facets


def _definition(
    doc: PromptDocument,
    request: PublishRequest,
    facet: FacetPrompt,
    evidence: FacetEvidence,
    project_id: str | None,
    publishing_one: bool,
) -> dict[str, Any]:
    extra: dict[str, Any] = {"evaluated_in": evidence.runs}
    if request.version:
        extra["facet_version"] = request.version
    return function_definition(
        project_id=project_id,
        project_name=request.project,
        facet_name=facet.facet_name,
        prompt_text=facet.prompt_text,
        prompt_sha256=facet.prompt_sha256,
        no_match_pattern=facet.no_match_pattern,
        model=request.model,
        name=request.facet_name or function_name(facet.facet_name, publishing_one),
        slug=request.slug or function_slug(request.slug_prefix, facet.facet_name),
        if_exists=request.if_exists,
        prompt_file=str(doc.path),
        extra_metadata=extra,
    )


def _function(
    definition: dict[str, Any], evidence: FacetEvidence, function_id: str | None, status: FunctionStatus
) -> PublishedFunction:
    return PublishedFunction(
        facet_name=definition["metadata"]["facet_name"],
        name=definition["name"],
        slug=definition["slug"],
        prompt_sha256=definition["metadata"]["prompt_sha256"],
        status=status,
        function_id=function_id,
        evidence_experiments=evidence.runs,
    )
