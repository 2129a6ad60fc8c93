"""The original facet-optimizer scripts' variable names: every setting reads its `FACET_OPTIMIZER_*`
name (and the original's other names for it, in order: `AliasChoices`), and a `FACET_OPTIMIZER_*` name that no setting reads
gets one warning naming the closest known one."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

ORIGINAL_PREFIX = "FACET_OPTIMIZER_"


def known_names(fields: Mapping[str, FieldInfo]) -> set[str]:
    """Every variable name the settings' `fields` read (upper case)."""
    names: set[str] = set()
    for info in fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
    return names


_WARNED: set[str] = set()


def dotenv_parse_warnings(env_file: Path | None) -> list[str]:
    """One sentence per line of the env file that is not `NAME=value` (python-dotenv's own notice,
    which names no file and comes once per read, is silenced); each file reported once per process."""
    import logging

    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    if env_file is None or not env_file.is_file() or f"parse:{env_file}" in _WARNED:
        return []
    from dotenv.parser import parse_stream

    _WARNED.add(f"parse:{env_file}")
    with env_file.open(encoding="utf-8") as stream:
        lines = [b.original.line for b in parse_stream(stream) if b.error]
    if not lines:
        return []
    where = ", ".join(str(n) for n in lines)
    return [f"{env_file}: line{'s' if len(lines) > 1 else ''} {where} not NAME=value; ignored"]


def unknown_name_warnings(
    env_file: Path | None, known_names: Iterable[str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One sentence per `FACET_OPTIMIZER_*` name in the environment or `.env` that is not one of
    `known_names`, naming the closest known one; each name is reported once per process."""
    found: dict[str, str] = {}
    for name in environ if environ is not None else os.environ:
        if name.upper().startswith(ORIGINAL_PREFIX):
            found.setdefault(name.upper(), "the environment")
    if env_file is not None and env_file.exists():
        from dotenv import dotenv_values

        for name in dotenv_values(env_file):
            if name.upper().startswith(ORIGINAL_PREFIX):
                found.setdefault(name.upper(), str(env_file))
    known = sorted(n for n in known_names if n.startswith(ORIGINAL_PREFIX))
    messages = []
    for name, where in sorted(found.items()):
        if name in known or name in _WARNED:
            continue
        _WARNED.add(name)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        suggestion = f"; did you mean {close[0]}?" if close else ""
        messages.append(f"unknown setting {name} (in {where}) is ignored{suggestion}")
    return messages
