"""The bundled sample of synthetic production facet traces (package data, made by `generate.py`)."""

from __future__ import annotations

from importlib import resources

SAMPLE_FILE_NAME = "sample_traces.jsonl"


def sample_lines() -> list[str]:
    """The sample's NDJSON lines as committed (timestamps unshifted; a few lines deliberately malformed)."""
    text = resources.files(__name__).joinpath(SAMPLE_FILE_NAME).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]
