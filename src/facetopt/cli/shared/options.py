"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
]
OutputRoot = Annotated[
    Path | None,
    typer.Option(
        "--output-root",
        help="State folder (runs, store.duckdb, prompt file). Env FACET_OPTIMIZER_OUTPUT_ROOT.",
    ),
]
EnvFile = Annotated[Path | None, typer.Option("--env-file", help="Settings file to read (default ./.env).")]
Backend = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="braintrust or local. Default: braintrust when BRAINTRUST_API_KEY is set, else local.",
    ),
]
DatasetName = Annotated[
    str | None, typer.Option("--dataset", help="Dataset name. Env FACET_OPTIMIZER_DATASET.")
]
FlushDeadline = Annotated[
    float | None,
    typer.Option(
        "--flush-deadline",
        help="Seconds Braintrust has to take each batch of written rows before the command stops "
        "waiting and says how to resume (default 300). Env FACET_OPTIMIZER_FLUSH_DEADLINE.",
    ),
]
TargetOrg = Annotated[
    str | None, typer.Option("--target-org", help="Org of the target project (Braintrust).")
]

# The options by which inspect and compare find a dataset's runs (latest, previous).
RunsDataset = Annotated[
    str | None,
    typer.Option(
        "--dataset", help="Dataset whose runs latest/previous choose among. Env FACET_OPTIMIZER_DATASET."
    ),
]
RunsTargetProject = Annotated[
    str | None,
    typer.Option("--target-project", help="Project holding the dataset. Env FACET_OPTIMIZER_TARGET_PROJECT."),
]
RunsModel = Annotated[
    str | None, typer.Option("--model", help="latest/previous choose among runs of this model.")
]
FacetFilter = Annotated[str | None, typer.Option("--facet", help="Only this facet (case-insensitive).")]
MaxCost = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        help="Stop sending model calls once spent plus in flight would pass this many US dollars "
        "(estimated from the price table; what was paid is kept, a re-run resumes). "
        "Env FACET_OPTIMIZER_MAX_COST.",
    ),
]
