"""The bundled sample of synthetic production facet traces (package data, made by `python -m tests.sample.generate` in the repository)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

SAMPLE_FILE_NAME = "sample_traces.jsonl"
# The newest row is two hours old once loaded, so the default 7-day window selects it
NEWEST_AGE = timedelta(hours=2)


def sample_lines() -> list[str]:
    """The sample's NDJSON lines as committed (timestamps unshifted; a few lines deliberately malformed)."""
    text = resources.files(__name__).joinpath(SAMPLE_FILE_NAME).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def load_sample_spans(folder: Path | None = None) -> Path:
    """Write the sample as NDJSON, shifted so its newest row is two hours old; return the file's path.

    Without `folder` the file goes to a temporary folder removed when the process exits.
    """
    lines = sample_lines()
    rows = [_json_object(line) for line in lines]
    newest = max(stamp for stamp in (_parse_time(row) for row in rows) if stamp is not None)
    shift = datetime.now(UTC) - NEWEST_AGE - newest
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="facetopt-sample-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target_dir = Path(folder)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / SAMPLE_FILE_NAME
    partial = target.with_name(target.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for line, row in zip(lines, rows, strict=True):
            stamp = _parse_time(row)
            if row is not None and stamp is not None:
                row["created"] = (stamp + shift).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                line = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
            out.write(line + "\n")
    os.replace(partial, target)
    return target


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _parse_time(row: dict[str, Any] | None) -> datetime | None:
    value = row.get("created") if row is not None else None
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)
