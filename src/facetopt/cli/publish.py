"""`facetopt publish`: a kept prompt goes back to production as a Braintrust facet function."""

# No `from __future__ import annotations` here: handles_errors copies the signature as is,
# and Typer needs real (evaluated) Annotated types to see the option names and help.

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from facetopt.cli.inspect import experiments_for
from facetopt.cli.options import Backend, EnvFile, JsonFlag, OutputRoot, TargetOrg
from facetopt.cli.output import emit, handles_errors, note, warn

if TYPE_CHECKING:
    from facetopt.services.publish import PublishResult

DEFAULT_PROJECT = "Facet Optimizer"
STATUS_STYLE = {"evaluated": "green", "simulated_only": "yellow", "never_evaluated": "red", "not_kept": "red"}


def render_publish(console: Console, result: "PublishResult") -> None:
    plain = {"markup": False, "highlight": False, "soft_wrap": True}
    table = Table(title=f"facet functions ({result.backend}, project {result.project})")
    table.add_column("facet", overflow="fold")
    table.add_column("slug", overflow="fold")
    table.add_column("prompt", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    table.add_column("status", overflow="fold")
    for function, evidence in zip(result.functions, result.evidence, strict=True):
        style = STATUS_STYLE[evidence.status]
        table.add_row(
            function.facet_name,
            function.slug,
            function.prompt_sha256[:12],
            f"[{style}]{evidence.status}[/]",
            function.status + (f" {function.function_id}" if function.function_id else ""),
        )
    console.print(table)
    for evidence in result.evidence:
        if evidence.sufficient:  # the others are warnings, already on stderr
            console.print(f"{evidence.facet_name}: {evidence.message}", **plain)
    if result.dry_run:
        console.print("dry run: nothing was sent. The function definitions:", **plain)
        import json

        console.print(json.dumps({"functions": result.definitions}, indent=2), **plain)
    elif result.output_file:
        console.print(
            f"local backend: nothing goes to production; wrote what would be sent to {result.output_file}",
            **plain,
        )


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
        bool, typer.Option("--dry-run", help="Print the definitions and the evidence check; contact nothing.")
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
    from facetopt.clients.local.store import LocalStore
    from facetopt.clients.prompt_file import load_prompt_file
    from facetopt.errors import InputError
    from facetopt.services.experiments import braintrust_connection
    from facetopt.services.publish import BraintrustPublisher, LocalPublisher, PublishRequest, run_publish

    if if_exists not in ("error", "replace", "ignore"):
        raise InputError(f"unknown --if-exists {if_exists!r}", hint="use error, replace or ignore")
    recorded = []
    with experiments_for(env_file, backend, output_root, target_project=None) as experiments:
        settings = experiments.settings
        if target_org:
            settings.target_org = target_org
        request = PublishRequest(
            facets=facet or [],
            facet_name=facet_name,
            slug=slug or settings.facet_slug,
            slug_prefix=slug_prefix,
            model=model or settings.model,
            if_exists=if_exists,  # type: ignore[arg-type]
            project=project
            or settings.facet_project
            or settings.target_project
            or settings.project
            or DEFAULT_PROJECT,
            version=settings.facet_version,
            dry_run=dry_run,
            force=force,
        )
        doc = load_prompt_file(prompt or settings.prompt_path)
        publisher = (
            BraintrustPublisher(lambda: braintrust_connection(settings))
            if experiments.backend == "braintrust"
            else LocalPublisher(settings.output_root)
        )
        result = run_publish(
            doc,
            request,
            experiments,
            publisher,
            record=lambda function, backend_name, project_name: recorded.append(
                (function, backend_name, project_name)
            ),
        )
    if recorded:
        with LocalStore(settings.store_path) as store:
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
    for message in result.warnings:
        warn(message)
    if result.forced:
        note("published with --force: the evidence check above did not pass")
    emit(result, as_json, lambda console: render_publish(console, result))
