"""Editing a prompt file in place: new scalars are spliced into the text at the positions the YAML
parser reports, so every byte outside the edited scalars (comments, quoting, line endings) stays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from facetopt.clients.prompt_file.model import FacetPrompt, join_prompt_text
from facetopt.clients.prompt_file.parse import parse_prompt_text
from facetopt.errors import PromptFileError

# YAML block scalars may hold only printable characters, and no line breaks other than \n
UNSAFE_CHAR = re.compile(
    r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\ufeff]"
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def edited_prompt_text(text: str, path: Path, facets: list[FacetPrompt], index: int, new_text: str) -> str:
    """The file text with facet `index`'s prompt (its last suffix message) and prompt_sha256 replaced.

    With several suffix messages only the last is edited; `new_text` may be the whole prompt
    (starting with the earlier messages' text) or just the last message's text.
    """
    facet = facets[index]
    messages = [m for group in facet.suffix_messages for m in group]
    earlier = join_prompt_text([messages[:-1]]) + "\n\n" if len(messages) > 1 else ""
    last_text = new_text[len(earlier) :] if earlier and new_text.startswith(earlier) else new_text
    groups = [[dict(m) for m in group] for group in facet.suffix_messages]
    groups[-1][-1]["content"] = _with_content_text(groups[-1][-1].get("content"), last_text)
    updated = FacetPrompt(**{**facet.model_dump(), "suffix_messages": groups, "prompt_sha256": ""})
    expected = facets[:index] + [updated] + facets[index + 1 :]
    return _splice_prompt(text, path, index, last_text, updated.prompt_sha256, expected)


def _with_content_text(content: Any, text: str) -> Any:
    if isinstance(content, list):
        parts = [dict(p) if isinstance(p, dict) else p for p in content]
        for part in reversed(parts):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = text
                return parts
    return text


def _double_quoted(text: str) -> str:
    def escape(ch: str) -> str:
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if UNSAFE_CHAR.match(ch):
            cp = ord(ch)
            return f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
        return ch

    return '"' + "".join(escape(ch) for ch in text) + '"'


def _literal(text: str, indent: int, key_column: int, nl: str, header_rest: str) -> str | None:
    """A `|` block scalar for text, its content lines at `indent` spaces; None when `|` cannot hold it."""
    if not text.strip() or UNSAFE_CHAR.search(text):
        return None
    trailing = len(text) - len(text.rstrip("\n"))
    chomp = "-" if trailing == 0 else "" if trailing == 1 else "+"
    lines = text.rstrip("\n").split("\n")
    first = next((line for line in lines if line.strip()), "")
    indicator = str(indent - key_column) if first.startswith(" ") and 0 < indent - key_column < 10 else ""
    body = [" " * indent + line if line else "" for line in lines] + [""] * max(trailing - 1, 0)
    return f"|{indicator}{chomp}{header_rest}" + "".join(nl + line for line in body)


def _line_end(text: str, index: int) -> int:
    """Index of the line break ending the line that holds `index` (len(text) at the end of the file)."""
    end = text.find("\n", index)
    end = len(text) if end == -1 else end
    return end - 1 if end > index and text[end - 1] == "\r" else end


def _scalar_options(text: str, key: Any, node: Any, in_flow: bool, new: str) -> list[tuple[int, int, str]]:
    """Ways to write `new` in place of a scalar node, the original's style first."""
    nl = "\r\n" if "\r\n" in text else "\n"
    start, end, key_column = node.start_mark.index, node.end_mark.index, key.start_mark.column
    if node.style in ("|", ">"):
        header_end = _line_end(text, start)
        header_rest = re.sub(r"^[|>][0-9+-]*", "", text[start:header_end]).rstrip()
        content_end = start + len(text[start:end].rstrip())
        region_end = _line_end(text, content_end) if content_end > header_end else header_end
        lines = [ln for ln in text[header_end:region_end].splitlines() if ln.strip()]
        indent = len(lines[0]) - len(lines[0].lstrip(" ")) if lines else key_column + 2
        literal = _literal(new, indent, key_column, nl, header_rest)
        return [(start, region_end, r) for r in (literal, _double_quoted(new) + header_rest) if r]
    options = []
    if "\n" not in new and not UNSAFE_CHAR.search(new):
        if node.style is None:
            options.append(new)
        if node.style in (None, "'"):
            options.append("'" + new.replace("'", "''") + "'")
    options.append(_double_quoted(new))
    gap = ""
    if (
        start == end
    ):  # an empty value (`key:`): the parser marks it at the next token, so write after the colon
        start = end = text.find(":", key.end_mark.index) + 1
        gap = " "
    found = [(start, end, gap + option) for option in options]
    rest_end = _line_end(text, end)
    rest = text[end:rest_end]
    if (
        node.style != '"'
        and not in_flow
        and "\n" in new
        and (not rest.strip() or rest.lstrip().startswith("#"))
    ):
        literal = _literal(new, key_column + 2, key_column, nl, rest.rstrip())
        if literal:
            found.insert(len(found) - 1, (start, rest_end, literal))
    return found


def _pair(mapping: Any, key: str) -> tuple[Any, Any] | None:
    for key_node, value_node in mapping.value:
        if getattr(key_node, "value", None) == key:
            return key_node, value_node
    return None


def _required_pair(mapping: Any, key: str, path: Path) -> tuple[Any, Any]:
    found = _pair(mapping, key)
    if found is None:
        raise PromptFileError(
            f"{path}: cannot write the new prompt text in place", hint="edit the file by hand"
        )
    return found


def _splice_prompt(
    text: str, path: Path, index: int, new: str, new_hash: str, expected: list[FacetPrompt]
) -> str:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    root = YAML(typ="rt").compose(text)
    facets_pair = _pair(root, "facets")
    facet = facets_pair[1].value[index] if facets_pair else root
    suffix = _required_pair(facet, "suffix_messages", path)[1]
    group = suffix.value[-1] if isinstance(suffix.value[-1], SequenceNode) else suffix
    owner = group.value[-1]
    key, node = _required_pair(owner, "content", path)
    if isinstance(node, SequenceNode):
        owner = [p for p in node.value if isinstance(p, MappingNode) and _pair(p, "text")][-1]
        key, node = _required_pair(owner, "text", path)
    content_options = _scalar_options(text, key, node, bool(owner.flow_style), new)
    hash_pair = _pair(facet, "prompt_sha256")
    hash_options: list[tuple[int, int, str] | None] = [None]
    if hash_pair:
        hash_key, hash_node = hash_pair
        hash_options = _scalar_options(text, hash_key, hash_node, bool(facet.flow_style), new_hash)  # type: ignore[assignment]
    want = [f.model_dump() for f in expected]
    for content_edit in content_options:
        for hash_edit in hash_options:
            candidate = text
            for start, end, replacement in sorted(filter(None, [content_edit, hash_edit]), reverse=True):
                candidate = candidate[:start] + replacement + candidate[end:]
            try:
                data, facets = parse_prompt_text(candidate, path)
            except PromptFileError:
                continue
            stored = data["facets"][index] if facets_pair else data
            hash_ok = hash_edit is None or str(stored.get("prompt_sha256")) == new_hash
            if hash_ok and [f.model_dump() for f in facets] == want:
                return candidate
    raise PromptFileError(f"{path}: cannot write the new prompt text in place", hint="edit the file by hand")
