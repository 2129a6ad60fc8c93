"""`facetopt publish`: a kept prompt goes back to production as a Braintrust facet function."""

# No `from __future__ import annotations` here: handles_errors copies the signature as is,
# and Typer needs real (evaluated) Annotated types to see the option names and help.

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from facetopt.cli.shared.options import Backend, EnvFile, JsonFlag, OutputRoot, TargetOrg
from facetopt.cli.shared.output import emit, handles_errors, note, warn

if TYPE_CHECKING:
    from facetopt.services.publish.run import PublishResult

DEFAULT_PROJECT = "Facet Optimizer"
STATUS_STYLE = {"evaluated": "green", "simulated_only": "yellow"}  # every other status: a refusal, red


def render_publish(console: Console, result: "PublishResult") -> None:
    """One block per facet (reads at 80 columns): function, evidence, outcome."""

    def line(text: str, markup: bool = False) -> None:
        console.print(text, markup=markup, highlight=False, soft_wrap=True)

    line(f"facet functions ({result.backend}, project {result.project}):")
    for function, evidence in zip(result.functions, result.evidence, strict=True):
        style = STATUS_STYLE.get(evidence.status, "red")
        outcome = function.status.replace("_", " ")
        if function.function_id:
            outcome += f", id {function.function_id}"
        line(
            f"[bold]{function.facet_name}[/] -> {function.slug} (prompt {function.prompt_sha256[:12]})", True
        )
        line(f"  evidence: [{style}]{evidence.status}[/]: {escape(evidence.message)}", True)
        line(f"  {outcome}" + (f": {function.problem}" if function.problem else ""))
        if evidence.hint and not evidence.sufficient:
            line(f"  next: {evidence.hint}")
    if result.outcome == "would_refuse":
        line(f"dry run: the real run would refuse: {result.reason}")
    elif result.dry_run:
        line("dry run: the real run would publish (evidence read where it lives; nothing was sent)")
    if result.dry_run:
        line("The function definitions:")
        line(json.dumps({"functions": result.definitions}, indent=2))
    elif result.output_file:
        line(f"local backend: nothing goes to production; wrote what would be sent to {result.output_file}")


@handles_errors
def publish_command(
    facet: Annotated[
        list[str] | None,
        typer.Option(
            "--facet", help="Facet to publish (repeat for several). Default: every facet of the prompt file."
        ),
    ] = None,
    facet_name: Annotated[
        str | None,
        typer.Option("--facet-name", help="The function's name (one facet only). Default: the facet name."),
    ] = None,
    slug: Annotated[
        str | None,
        typer.Option(
            "--slug",
            help="The function's slug (one facet only). Env FACET_OPTIMIZER_FACET_SLUG."
            " Default: <slug prefix>-<facet>.",
        ),
    ] = None,
    slug_prefix: Annotated[
        str, typer.Option("--slug-prefix", help="Prefix of the default slugs.")
    ] = "facet-optimizer",
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model the facet runs with in production. Env FACET_OPTIMIZER_MODEL."),
    ] = None,
    if_exists: Annotated[
        str,
        typer.Option(
            "--if-exists",
            help="When the slug exists: replace it, ignore (keep the existing function) or error.",
        ),
    ] = "replace",
    prompt: Annotated[
        Path | None,
        typer.Option(
            "--prompt", help="Prompt file. Default: FACET_OPTIMIZER_PROMPT, else the output root's."
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Project that receives the functions. Env FACET_OPTIMIZER_FACET_PROJECT,"
            " FACET_OPTIMIZER_TARGET_PROJECT, FACET_OPTIMIZER_PROJECT; default 'Facet Optimizer'.",
        ),
    ] = None,
    target_org: TargetOrg = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read the evidence as the real run does and report its decision and exit status; send nothing.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Publish even when the prompt lacks evidence (never evaluated, or not kept)."
        ),
    ] = False,
    backend: Backend = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish the prompt file's facets as Braintrust facet functions, once the prompt has evidence."""
    from facetopt.errors import InputError
    from facetopt.services.next_steps import publish_next_steps
    from facetopt.services.publish.run import PublishRequest, publish_prompt_file
    from facetopt.settings import load_settings

    if if_exists not in ("error", "replace", "ignore"):
        raise InputError(f"unknown --if-exists {if_exists!r}", hint="use error, replace or ignore")
    settings = load_settings(
        env_file, warn=warn, backend=backend, output_root=output_root, target_org=target_org, model=model
    )
    request = PublishRequest(
        facets=facet or [],
        facet_name=facet_name,
        slug=slug or settings.facet_slug,
        slug_prefix=slug_prefix,
        model=settings.model,
        if_exists=if_exists,
        project=project
        or settings.facet_project
        or settings.target_project  # FACET_OPTIMIZER_PROJECT already falls back into it
        or DEFAULT_PROJECT,
        version=settings.facet_version,
        dry_run=dry_run,
        force=force,
    )
    result = publish_prompt_file(settings, request, prompt or settings.prompt_path, note)
    for message in result.warnings:
        warn(message)
    if result.forced:
        note("published with --force: the evidence check above did not pass")
    result.next_steps = publish_next_steps(result)
    try:
        emit(result, as_json, lambda console: render_publish(console, result))
    except Exception:  # after an insert, a rendering bug must not read as "not published"
        emit(result, True)
    if result.outcome in ("would_refuse", "unverified"):
        # the dry run exits as the real run would; an unverified function was inserted nonetheless
        sys.stderr.write(f"error: {result.reason}\n" + (f"hint: {result.hint}\n" if result.hint else ""))
        raise typer.Exit(1)
