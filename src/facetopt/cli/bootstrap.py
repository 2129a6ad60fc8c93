"""`facetopt bootstrap`: a run's captured facet prompts -> the editable prompt file."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from facetopt.cli.shared.options import DatasetName, EnvFile, JsonFlag, OutputRoot
from facetopt.cli.shared.output import emit, handles_errors, warn
from facetopt.services.bootstrap import BootstrapResult, bootstrap_prompt_file
from facetopt.settings import load_settings

STATUS_STYLE = {"new": "green", "changed": "yellow", "same": "dim", "unchanged": "dim"}


def render_bootstrap(console: Console, result: BootstrapResult) -> None:
    table = Table()
    table.add_column("facet")
    table.add_column("prompt sha256")
    table.add_column("status")
    for facet in result.facets:
        status = f"[{STATUS_STYLE[facet.status]}]{facet.status}[/]"
        table.add_row(facet.facet_name, facet.prompt_sha256[:12], status)
    console.print(table)

    def plain(text: str) -> None:
        # soft_wrap: paths, diff lines and the .env line must stay whole to be copied
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    if result.unchanged:
        plain(f"{result.output} already matches {result.source}; nothing written.")
    else:
        plain(f"wrote {result.output} from {result.source}")
    if result.diff:
        plain("prompt changes:")
        plain(result.diff)
    plain("put this line in .env:")
    plain(result.env_line)


@handles_errors
def bootstrap_command(
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run-dir",
            help="Run folder (or its facet_prompt.yaml) to promote. Default: the newest run under the output"
            " root of the configured dataset (--dataset, FACET_OPTIMIZER_DATASET) when one is set.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Prompt file to write. Default: FACET_OPTIMIZER_PROMPT, else"
            " <output root>/facet_definitions.yaml.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite the prompt file even when it differs (its edits are lost)."),
    ] = False,
    dataset: DatasetName = None,
    output_root: OutputRoot = None,
    env_file: EnvFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Promote a run's facet prompts to the prompt file you edit, and print the line for .env."""
    settings = load_settings(env_file, warn=warn, output_root=output_root, dataset=dataset)
    result = bootstrap_prompt_file(
        settings.store_path,
        output_root=settings.output_root,
        run_dir=run_dir,
        output=output if output is not None else settings.prompt_path,
        force=force,
        dataset=settings.dataset,
        project=settings.target_project,
    )
    emit(result, as_json, lambda console: render_bootstrap(console, result))
