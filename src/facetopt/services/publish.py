"""`facetopt publish`: the prompt file's facets become Braintrust facet functions, after an
evidence check, and are read back to prove that what runs in production is what was sent.

On the local backend nothing is sent: the definitions are written to a file under the output root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from facetopt.clients import artifacts
from facetopt.clients.prompt_file import FacetPrompt, PromptDocument
from facetopt.domain.next_steps import NextStep
from facetopt.errors import BraintrustError, FacetoptError, InputError
from facetopt.facets.publishing import (
    DEFAULT_SLUG_PREFIX,
    function_definition,
    function_name,
    function_slug,
    readback_mismatches,
)
from facetopt.services.experiments import Experiments
from facetopt.services.publish_evidence import DecisionLookup, FacetEvidence, facet_evidence

FunctionStatus = Literal["published", "unchanged", "would_publish", "would_refuse", "written", "unverified"]
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


class Publisher(Protocol):
    """Where functions go: Braintrust, or a file on the local backend."""

    backend: str

    def project_id(self, project: str) -> str | None: ...

    def refusal(self, definitions: list[dict[str, Any]], project: str, if_exists: str) -> InputError | None:
        """What the real run would refuse for the functions already there (reads only)."""
        ...

    def publish(
        self, definitions: list[dict[str, Any]], if_exists: str, warnings: list[str]
    ) -> tuple[list[PublishOutcome], str | None]:
        """Send the definitions; per definition (function id, status, problem), and the file written if any."""
        ...


PublishOutcome = tuple[str | None, FunctionStatus, str | None]  # (function id, status, problem)
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


class BraintrustPublisher:
    """Register the project, refuse existing slugs under `--if-exists error`, insert, read back."""

    backend = "braintrust"

    def __init__(self, connect: Callable[[], Any]):
        self._connect = connect
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def project_id(self, project: str) -> str | None:
        from facetopt.clients.braintrust.functions import register_project

        return register_project(self._connection(), project)

    def refusal(self, definitions: list[dict[str, Any]], project: str, if_exists: str) -> InputError | None:
        from facetopt.clients.braintrust.functions import functions_with_slug
        from facetopt.clients.braintrust.lookup import resolve_project
        from facetopt.errors import NotFoundError

        if if_exists != "error":
            return None
        conn = self._connection()
        try:
            project_id = resolve_project(conn, project).id
        except NotFoundError:
            return None  # a new project holds no function yet
        for definition in definitions:
            existing = functions_with_slug(conn, project_id, definition["slug"])
            if existing:
                return _slug_taken(definition, existing[0].get("id"))
        return None

    def publish(
        self, definitions: list[dict[str, Any]], if_exists: str, warnings: list[str]
    ) -> tuple[list[PublishOutcome], str | None]:
        from facetopt.clients.braintrust.functions import functions_with_slug, insert_functions

        conn = self._connection()
        if if_exists == "error":
            for definition in definitions:
                existing = functions_with_slug(conn, definition["project_id"], definition["slug"])
                if existing:
                    raise _slug_taken(definition, existing[0].get("id"))
        try:
            reply = {f.get("slug"): f for f in insert_functions(conn, definitions)}
        except FacetoptError as error:
            # the reply may be lost after Braintrust stored the functions: what reads back decides
            if not self._all_stored(conn, definitions):
                raise
            warnings.append(
                f"the insert's reply was lost ({error.message}), but every function reads back as sent"
            )
            reply = {}
        return [
            self._verify(conn, d, reply.get(d["slug"], {}), if_exists, warnings) for d in definitions
        ], None

    def _all_stored(self, conn: Any, definitions: list[dict[str, Any]]) -> bool:
        try:
            return all(not readback_mismatches(d, self._read_back(conn, d, None)) for d in definitions)
        except FacetoptError:
            return False

    def _verify(
        self, conn: Any, definition: dict[str, Any], sent: dict[str, Any], if_exists: str, warnings: list[str]
    ) -> PublishOutcome:
        """After the insert: published when it reads back as sent, else unverified (never raised)."""
        try:
            stored = self._read_back(conn, definition, sent.get("id"))
        except FacetoptError as error:
            return sent.get("id"), "unverified", f"inserted, but it cannot be read back: {error.message}"
        problems = readback_mismatches(definition, stored)
        kept_existing = if_exists == "ignore" and bool(sent.get("found_existing"))
        if problems and kept_existing:
            warnings.append(
                f"{definition['slug']}: --if-exists ignore kept the existing function, which differs: "
                + "; ".join(problems)
            )
        elif problems:
            return (
                stored.get("id"),
                "unverified",
                "inserted, but it reads back different from what was sent: " + "; ".join(problems),
            )
        return stored.get("id"), "unchanged" if kept_existing else "published", None

    @staticmethod
    def _read_back(conn: Any, definition: dict[str, Any], function_id: str | None) -> dict[str, Any]:
        from facetopt.clients.braintrust.functions import functions_with_slug

        found = functions_with_slug(conn, definition["project_id"], definition["slug"])
        match = next((f for f in found if function_id and f.get("id") == function_id), None)
        if match is None and found:
            match = found[0]
        if match is None:
            raise BraintrustError(
                f"function {definition['slug']!r} was accepted but cannot be read back",
                hint="check the project in the Braintrust UI, then publish again",
            )
        return match


def _slug_taken(definition: dict[str, Any], function_id: Any) -> InputError:
    return InputError(
        f"a function with slug {definition['slug']!r} already exists in project "
        f"{definition['metadata']['project']!r} (id {function_id})",
        hint="pass --if-exists replace to overwrite it, or --slug to publish under another slug",
    )


class LocalPublisher:
    """The local backend has no production to publish to: write what would be sent, and say so."""

    backend = "local"

    def __init__(self, output_root: Path):
        self.output_root = output_root

    def project_id(self, project: str) -> str | None:
        return None

    def refusal(self, definitions: list[dict[str, Any]], project: str, if_exists: str) -> InputError | None:
        return None

    def publish(
        self, definitions: list[dict[str, Any]], if_exists: str, warnings: list[str]
    ) -> tuple[list[PublishOutcome], str | None]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.output_root / "published" / f"{stamp}-functions.json"
        artifacts.write_text(path, json.dumps({"functions": definitions}, indent=2) + "\n")
        return [(None, "written", None) for _ in definitions], str(path)
