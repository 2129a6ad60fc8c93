"""Span-export lines DuckDB cannot take, found before it reads the file.

DuckDB's `ignore_errors` skips a line that is not JSON, but a line longer than its object size
limit makes the whole read fail (or run out of its memory limit), and invalid UTF-8 fails the
file. Such lines are counted by reason and left out of a cleaned copy that DuckDB reads instead;
a file without them is read as it is (one extra pass, no copy).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

# DuckDB's default `maximum_object_size` (16 MiB); a span line over it is never a row
MAX_LINE_BYTES = 16 * 1024 * 1024
OVERSIZED = f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB"
NOT_UTF8 = "not valid UTF-8"


@dataclass
class ScreenedFile:
    path: Path  # the file DuckDB reads: the original, or a cleaned copy
    lines: int = 0  # lines that are not blank, kept or not
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> lines left out


def screen_file(path: Path, copy_dir: Path, max_line_bytes: int = MAX_LINE_BYTES) -> ScreenedFile:
    screened = ScreenedFile(path)
    with _open(path) as handle:
        for line in handle:
            if line.isspace():
                continue
            screened.lines += 1
            if (reason := _problem(line, max_line_bytes)) is not None:
                screened.skipped[reason] = screened.skipped.get(reason, 0) + 1
    if screened.skipped:
        screened.path = _clean_copy(path, copy_dir, max_line_bytes)
    return screened


def _problem(line: bytes, max_line_bytes: int) -> str | None:
    if len(line) > max_line_bytes:
        return OVERSIZED
    if not line.isascii():
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return NOT_UTF8
    return None


def _clean_copy(path: Path, copy_dir: Path, max_line_bytes: int) -> Path:
    copy_dir.mkdir(parents=True, exist_ok=True)
    copy = copy_dir / f"{len(list(copy_dir.iterdir()))}-{path.name.split('.')[0]}.jsonl"
    with _open(path) as source, copy.open("wb") as target:
        for line in source:
            if not line.isspace() and _problem(line, max_line_bytes) is None:
                target.write(line if line.endswith(b"\n") else line + b"\n")
    return copy


def _open(path: Path) -> BinaryIO:
    return cast(BinaryIO, gzip.open(path, "rb")) if path.name.lower().endswith(".gz") else path.open("rb")
