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
