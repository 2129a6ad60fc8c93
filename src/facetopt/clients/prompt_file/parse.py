"""Reading and validating a prompt file: every problem is one `file:line: ...` error with a hint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

from facetopt.clients.prompt_file.model import (
    DEFAULT_PLACEHOLDER,
    FACET_KEYS,
    SCHEMA_VERSION,
    FacetPrompt,
    join_prompt_text,
)
from facetopt.errors import PromptFileError

FIX_HINT = "fix the prompt file, or promote a fresh copy with `facetopt bootstrap --force`"


def _fail(path: Path, line: int | None, what: str, hint: str = FIX_HINT) -> NoReturn:
    raise PromptFileError(f"{path}:{line}: {what}" if line else f"{path}: {what}", hint=hint)


def _line(node: Any, key: Any = None, value: bool = False) -> int | None:
    """1-based line of a mapping/sequence, or of one of its keys (or that key's value)."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    if key is None:
        return lc.line + 1
    try:
        return (lc.value(key) if value else lc.key(key) if isinstance(node, dict) else lc.item(key))[0] + 1
    except (KeyError, IndexError, TypeError):
        return lc.line + 1


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


def read_prompt_file(path: Path) -> tuple[str, Any, list[FacetPrompt]]:
    """(text, round-trip tree, facets) of a prompt file on disk."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        _fail(
            path, None, "prompt file not found", hint="run `facetopt bootstrap` or set FACET_OPTIMIZER_PROMPT"
        )
    except IsADirectoryError:
        _fail(path, None, "is a folder, not a prompt file", hint="pass the path of a .yaml file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(path, raw[: exc.start].count(b"\n") + 1, "the prompt file is not UTF-8 text")
    data, facets = parse_prompt_text(text, path)
    return text, data, facets


def parse_prompt_text(text: str, path: Path) -> tuple[Any, list[FacetPrompt]]:
    """Parse and validate prompt-file text into (round-trip tree, facets); errors are `file:line: ...`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join((exc.problem or exc.context or "cannot be parsed").split())
        line = mark.line + 1 if mark else None
        dedented = _dedented_block_line(text, line) if line else None
        if dedented is not None:
            at, block = dedented
            _fail(
                path,
                at,
                f"this line is less indented than the text block it continues (`{block[1]}` at line "
                f"{block[0]}), so the block ends here"
                + (f" and YAML fails at line {line}: {problem}" if line != at else f" (YAML: {problem})"),
                hint="indent it like the lines of the text above it",
            )
        _fail(path, line, f"invalid YAML: {problem}")
    except YAMLError as exc:
        _fail(path, None, f"invalid YAML: {str(exc).splitlines()[0]}")
    if data is None:
        _fail(
            path, None, "the prompt file is empty", hint="promote a run's prompts with `facetopt bootstrap`"
        )
    return data, _facets_from_tree(data, path)


_BLOCK_START = re.compile(r"^(\s*)(?:- )?[\w-]+:\s*[|>][-+]?\s*$")
_KEY_OR_ITEM = re.compile(r"^\s*(?:- |[\w-]+:(\s|$))")


def _dedented_block_line(text: str, error_line: int) -> tuple[int, tuple[int, str]] | None:
    """The line, before where YAML noticed a problem, that ended a `key: |` text block by being
    less indented than the block's text while not being a YAML key or item: the usual cause of an
    error reported lines later, when a line added to a prompt lost its indentation."""
    lines = text.splitlines()
    found = None
    block: tuple[int, str, int] | None = None  # (line, the `key: |` text, the block's indent)
    for number, line in enumerate(lines[:error_line], start=1):
        indent = len(line) - len(line.lstrip(" "))
        if block is not None and line.strip():
            if block[2] < 0:
                block = (block[0], block[1], indent)
            elif indent < block[2]:
                if not _KEY_OR_ITEM.match(line):
                    found = (number, (block[0], block[1]))
                block = None
        if block is None and _BLOCK_START.match(line):
            block = (number, line.strip(), -1)
    return found


def _facets_from_tree(data: Any, path: Path) -> list[FacetPrompt]:
    if not isinstance(data, dict):
        _fail(path, _line(data) or 1, "expected a mapping with schema_version and facet_name or facets")
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        version = data["schema_version"]
        _fail(path, _line(data, "schema_version"), f"unsupported schema_version {version!r} (expected 1)")
    if "facets" in data:
        extra = [k for k in data if k not in ("schema_version", "facets")]
        if extra:
            _fail(path, _line(data, extra[0]), f"unexpected top-level key {extra[0]!r} beside facets")
        items = data["facets"]
        if not isinstance(items, list):
            _fail(path, _line(data, "facets", value=True), "facets must be a list of facets")
        if not items:
            _fail(path, _line(data, "facets"), "facets is empty: the file defines no facet")
        entries = [(item, _line(items, i)) for i, item in enumerate(items)]
    elif "facet_name" in data:
        entries = [(data, _line(data))]
    else:
        _fail(path, _line(data), "expected facet_name (one facet) or facets: [...] (several)")
    facets: list[FacetPrompt] = []
    first_line: dict[str, int | None] = {}
    for item, line in entries:
        facet = _facet_from_tree(item, line, path, top_level=item is data)
        key = facet.facet_name.lower()
        if key in first_line:
            name_line = _line(item, "facet_name", value=True)
            _fail(
                path, name_line, f"duplicate facet name {facet.facet_name!r} (also at line {first_line[key]})"
            )
        first_line[key] = _line(item, "facet_name", value=True)
        facets.append(facet)
    return facets


def _facet_from_tree(item: Any, line: int | None, path: Path, top_level: bool) -> FacetPrompt:
    if not isinstance(item, dict):
        _fail(path, line, "each entry of facets must be a mapping with facet_name, messages, suffix_messages")
    name = item.get("facet_name")
    if not isinstance(name, str) or not name.strip():
        _fail(
            path,
            _line(item, "facet_name", value=True) if "facet_name" in item else line,
            "facet_name is missing",
        )
    name = name.strip()
    for key in item:
        if key not in FACET_KEYS and not (top_level and key == "schema_version"):
            _fail(
                path,
                _line(item, key),
                f"facet {name!r}: unknown key {key!r} (expected {', '.join(FACET_KEYS)})",
            )
    placeholder = item.get("placeholder", DEFAULT_PLACEHOLDER)
    if not isinstance(placeholder, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", placeholder):
        _fail(path, _line(item, "placeholder", value=True), f"facet {name!r}: placeholder must be a name")
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        where = _line(item, "messages") if "messages" in item else line
        _fail(
            path, where, f"facet {name!r}: messages (the wrapper around the trace) must be a non-empty list"
        )
    _check_messages(messages, path, f"facet {name!r}: messages")
    groups = _suffix_groups(item, name, line, path)
    if not _uses_placeholder(messages, placeholder):
        _fail(
            path,
            _line(item, "messages"),
            f"facet {name!r}: the wrapper messages never use {{{{{placeholder}}}}}, so the trace would never "
            "be sent to the model",
        )
    pattern = item.get("no_match_pattern")
    if pattern is not None:
        pattern_line = _line(item, "no_match_pattern", value=True)
        if not isinstance(pattern, str) or not pattern.strip():
            _fail(path, pattern_line, f"facet {name!r}: no_match_pattern must be a non-empty regex string")
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            _fail(path, pattern_line, f"facet {name!r}: invalid no_match_pattern {str(pattern)!r}: {exc}")
    return FacetPrompt(
        facet_name=name,
        placeholder=placeholder,
        messages=_plain(messages),
        suffix_messages=_plain(groups),
        no_match_pattern=str(pattern) if pattern is not None else None,
    )


def _suffix_groups(item: Any, name: str, line: int | None, path: Path) -> list[list[Any]]:
    value = item.get("suffix_messages")
    where = _line(item, "suffix_messages") if "suffix_messages" in item else line
    if not value:
        _fail(path, where, f"facet {name!r} has no prompt text (suffix_messages is missing or empty)")
    if not isinstance(value, list):
        _fail(path, where, f"facet {name!r}: suffix_messages must be a list of message groups")
    if all(isinstance(entry, dict) for entry in value):
        groups = [value]
    elif all(isinstance(entry, list) and entry for entry in value):
        groups = value
    else:
        _fail(path, where, f"facet {name!r}: suffix_messages must be a list of messages or of message lists")
    for group in groups:
        _check_messages(group, path, f"facet {name!r}: suffix_messages")
    if not join_prompt_text(_plain(groups)).strip():
        _fail(path, where, f"facet {name!r} has no prompt text (the suffix_messages content is empty)")
    return groups


def _uses_placeholder(messages: list[Any], placeholder: str) -> bool:
    pattern = re.compile(r"\{\{\s*" + re.escape(placeholder) + r"\s*\}\}")
    for message in messages:
        content = message.get("content")
        parts = (
            [content] if isinstance(content, str) else [p.get("text") for p in content if isinstance(p, dict)]
        )
        if any(isinstance(part, str) and pattern.search(part) for part in parts):
            return True
    return False


def _check_messages(messages: list[Any], path: Path, label: str) -> None:
    for i, message in enumerate(messages):
        where = _line(messages, i)
        if not isinstance(message, dict) or "content" not in message:
            _fail(path, where, f"{label}: each message needs role and content")
        if not isinstance(message.get("role"), str):
            _fail(path, where, f"{label}: a message's role must be a string such as user or system")
        if not isinstance(message["content"], str | list):
            _fail(path, _line(message, "content", value=True), f"{label}: content must be text")
