"""Run folders and atomic artifact writes."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def new_run_dir(output_root: Path, now: datetime | None = None) -> Path:
    """`<root>/<UTC YYYYMMDDTHHMMSSZ>`, with `-2`, `-3`... when that second is taken."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    output_root.mkdir(parents=True, exist_ok=True)
    candidate, n = output_root / stamp, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = output_root / f"{stamp}-{n}"


def _to_jsonable(item: Any) -> Any:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


def write_bytes(path: Path, payload: bytes) -> None:
    """Write through a temporary file in the same folder, then rename it over the target.

    An existing file keeps its permissions; a new one gets the usual (umask) permissions.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(payload)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(_to_jsonable(value), indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, items: Iterable[Any]) -> int:
    lines = [json.dumps(_to_jsonable(i), ensure_ascii=False, default=str) for i in items]
    write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class JsonlJournal:
    """Append-only journal flushed per line: what a crash leaves behind is still readable."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle = path.open("a", encoding="utf-8")

    def append(self, item: Any) -> None:
        self._handle.write(json.dumps(_to_jsonable(item), ensure_ascii=False, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
