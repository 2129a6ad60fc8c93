"""The prompt file (`facet_prompt.yaml` of a run, `facet_definitions.yaml` once promoted).

Users edit this file by hand, so it must survive every round trip exactly as they left it.
A `PromptDocument` keeps the file's text; edits splice new scalars into that text at the
positions the YAML parser reports, so every byte outside the edited scalars stays as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, Field, field_validator, model_validator

from facetopt.errors import NotFoundError, PromptFileError

DEFAULT_PLACEHOLDER = "preprocessed_text"
SCHEMA_VERSION = 1
FACET_KEYS = ("facet_name", "prompt_sha256", "placeholder", "messages", "suffix_messages", "no_match_pattern")
FIX_HINT = "fix the prompt file, or promote a fresh copy with `facetopt bootstrap --force`"
HEADER_COMMENT = """\
facetopt prompt file (schema_version 1).
Edit the facet prompt: the `content:` block under suffix_messages. Keep its indentation.
prompt_sha256 is recomputed from that text when the file is loaded; experiments record it.
messages wrap the trace: {{preprocessed_text}} marks where the trace text goes.
Optional per facet: no_match_pattern, a case-insensitive regex for values that mean "no match"."""


def prompt_sha256(text: str) -> str:
    """The prompt version id: sha256 hex of the prompt text (utf-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_text(content: Any) -> str:
    """A message content as text: a string, or its text parts joined by a newline."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def join_prompt_text(groups: list[list[dict[str, Any]]]) -> str:
    """The prompt text of suffix groups: every message content, joined by a blank line."""
    return "\n\n".join(content_text(m.get("content")) for group in groups for m in group)


class FacetPrompt(BaseModel):
    """One facet's prompt: wrapper messages around the trace plus the suffix prompt the user edits."""

    facet_name: str
    prompt_sha256: str = ""
    placeholder: str = DEFAULT_PLACEHOLDER
    messages: list[dict[str, Any]] = Field(default_factory=list)
    suffix_messages: list[list[dict[str, Any]]]
    no_match_pattern: str | None = None

    @field_validator("suffix_messages", mode="before")
    @classmethod
    def _as_groups(cls, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            return [value]  # a flat list of messages is one group
        return value

    @model_validator(mode="after")
    def _hash_matches_text(self) -> FacetPrompt:
        computed = prompt_sha256(self.prompt_text)
        if self.prompt_sha256 and self.prompt_sha256 != computed:
            raise ValueError(f"prompt_sha256 of facet {self.facet_name!r} does not match its prompt text")
        self.prompt_sha256 = computed
        return self

    @property
    def prompt_text(self) -> str:
        return join_prompt_text(self.suffix_messages)

    @property
    def compiled_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.no_match_pattern, re.IGNORECASE) if self.no_match_pattern else None

    @property
    def placeholder_regex(self) -> re.Pattern[str]:
        return re.compile(r"\{\{\s*" + re.escape(self.placeholder) + r"\s*\}\}")


def render_messages(facet: FacetPrompt, preprocessed_text: str) -> list[dict[str, Any]]:
    """The wrapper messages with `{{preprocessed_text}}` (spaces inside the braces allowed) filled in."""
    pattern = facet.placeholder_regex

    def fill(text: str) -> str:
        return pattern.sub(lambda _: preprocessed_text, text)

    rendered = []
    for message in facet.messages:
        content = message.get("content")
        if isinstance(content, str):
            content = fill(content)
        elif isinstance(content, list):
            content = [
                {**p, "text": fill(p["text"])}
                if isinstance(p, dict) and isinstance(p.get("text"), str)
                else p
                for p in content
            ]
        rendered.append({**message, "content": content})
    return rendered


class PromptDocument:
    """A loaded prompt file: its exact text, the ruamel round-trip tree and the validated facets."""

    def __init__(self, path: Path, text: str, data: Any, facets: list[FacetPrompt]):
        self.path = path
        self.text = text
        self.original_text = text
        self.data = data
        self.facets = facets

    @property
    def changed(self) -> bool:
        return self.text != self.original_text

    @property
    def facet_names(self) -> list[str]:
        return [f.facet_name for f in self.facets]

    def _index(self, name: str) -> int:
        for i, facet in enumerate(self.facets):
            if facet.facet_name.lower() == name.strip().lower():
                return i
        raise NotFoundError(
            f"facet {name!r} is not in {self.path}", hint=f"known facets: {', '.join(self.facet_names)}"
        )

    def facet(self, name: str) -> FacetPrompt:
        """The facet of that name, compared case-insensitively."""
        return self.facets[self._index(name)]

    def set_prompt_text(self, facet_name: str, new_text: str) -> FacetPrompt:
        """Replace the facet's prompt (its last suffix message) and its prompt_sha256, in place in the text.

        With several suffix messages only the last is edited; `new_text` may be the whole prompt
        (starting with the earlier messages' text) or just the last message's text.
        """
        index = self._index(facet_name)
        facet = self.facets[index]
        messages = [m for group in facet.suffix_messages for m in group]
        earlier = join_prompt_text([messages[:-1]]) + "\n\n" if len(messages) > 1 else ""
        last_text = new_text[len(earlier) :] if earlier and new_text.startswith(earlier) else new_text
        groups = [[dict(m) for m in group] for group in facet.suffix_messages]
        groups[-1][-1]["content"] = _with_content_text(groups[-1][-1].get("content"), last_text)
        updated = FacetPrompt(**{**facet.model_dump(), "suffix_messages": groups, "prompt_sha256": ""})
        expected = self.facets[:index] + [updated] + self.facets[index + 1 :]
        self.text = _splice_prompt(self.text, self.path, index, last_text, updated.prompt_sha256, expected)
        self.data, self.facets = parse_prompt_text(self.text, self.path)
        return self.facets[index]

    def append_to_prompt(self, facet_name: str, sentence: str) -> FacetPrompt:
        """Add a sentence as a new paragraph at the end of the facet's prompt (trailing newlines kept)."""
        current = self.facet(facet_name).prompt_text
        body = current.rstrip()
        return self.set_prompt_text(facet_name, f"{body}\n\n{sentence.strip()}{current[len(body) :]}")


def _with_content_text(content: Any, text: str) -> Any:
    if isinstance(content, list):
        parts = [dict(p) if isinstance(p, dict) else p for p in content]
        for part in reversed(parts):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = text
                return parts
    return text


# ---- loading and validation -------------------------------------------------------------------


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
        _fail(path, mark.line + 1 if mark else None, f"invalid YAML: {problem}")
    except YAMLError as exc:
        _fail(path, None, f"invalid YAML: {str(exc).splitlines()[0]}")
    if data is None:
        _fail(
            path, None, "the prompt file is empty", hint="promote a run's prompts with `facetopt bootstrap`"
        )
    return data, _facets_from_tree(data, path)


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


def _check_messages(messages: list[Any], path: Path, label: str) -> None:
    for i, message in enumerate(messages):
        where = _line(messages, i)
        if not isinstance(message, dict) or "content" not in message:
            _fail(path, where, f"{label}: each message needs role and content")
        if not isinstance(message.get("role"), str):
            _fail(path, where, f"{label}: a message's role must be a string such as user or system")
        if not isinstance(message["content"], str | list):
            _fail(path, _line(message, "content", value=True), f"{label}: content must be text")


def load_prompt_file(path: Path | str) -> PromptDocument:
    """Read and validate a prompt file (one facet at top level, or `facets: [...]`)."""
    path = Path(path)
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
    return PromptDocument(path, text, data, facets)


# ---- editing: splice new scalars into the text at the parser's positions ---------------------

# YAML block scalars may hold only printable characters, and no line breaks other than \n
_UNSAFE_CHAR = re.compile(
    r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\ufeff]"
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _double_quoted(text: str) -> str:
    def escape(ch: str) -> str:
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if _UNSAFE_CHAR.match(ch):
            cp = ord(ch)
            return f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
        return ch

    return '"' + "".join(escape(ch) for ch in text) + '"'


def _literal(text: str, indent: int, key_column: int, nl: str, header_rest: str) -> str | None:
    """A `|` block scalar for text, its content lines at `indent` spaces; None when `|` cannot hold it."""
    if not text.strip() or _UNSAFE_CHAR.search(text):
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
    if "\n" not in new and not _UNSAFE_CHAR.search(new):
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


def _splice_prompt(
    text: str, path: Path, index: int, new: str, new_hash: str, expected: list[FacetPrompt]
) -> str:
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    root = YAML(typ="rt").compose(text)
    facets_pair = _pair(root, "facets")
    facet = facets_pair[1].value[index] if facets_pair else root
    suffix = _pair(facet, "suffix_messages")[1]
    group = suffix.value[-1] if isinstance(suffix.value[-1], SequenceNode) else suffix
    owner = group.value[-1]
    key, node = _pair(owner, "content")
    if isinstance(node, SequenceNode):
        owner = [p for p in node.value if isinstance(p, MappingNode) and _pair(p, "text")][-1]
        key, node = _pair(owner, "text")
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


# ---- writing ----------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write through a temporary file in the same folder, then rename it over the target."""
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


def save_prompt_file(doc: PromptDocument, path: Path | str | None = None) -> Path:
    """Write the document's text; an unedited document writes exactly the bytes it was read from."""
    target = Path(path) if path is not None else doc.path
    payload = doc.text.encode("utf-8")
    if not (target.is_file() and target.read_bytes() == payload):
        atomic_write_bytes(target, payload)
    return target


def build_prompt_yaml(facets: list[FacetPrompt]) -> str:
    """A new prompt file: schema_version 1, one facet at top level or `facets:`; prompts as `|` blocks."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    yaml.width = 1_000_000  # never fold long lines
    yaml.indent(mapping=2, sequence=2, offset=0)
    top = CommentedMap(schema_version=SCHEMA_VERSION)
    if len(facets) == 1:
        top.update(_facet_tree(facets[0]))
    else:
        top["facets"] = [_facet_tree(f) for f in facets]
    top.yaml_set_start_comment(HEADER_COMMENT)
    out = io.StringIO()
    yaml.dump(top, out)
    # a blank line between the facets of a list, so each reads as its own block
    return re.sub(r"(?<!\nfacets:)\n(- facet_name:)", r"\n\n\1", out.getvalue())


def _facet_tree(facet: FacetPrompt) -> Any:
    from ruamel.yaml.comments import CommentedMap

    tree = CommentedMap()
    tree["facet_name"] = facet.facet_name
    tree["prompt_sha256"] = facet.prompt_sha256
    tree["placeholder"] = facet.placeholder
    tree["messages"] = [_message_tree(m, block_always=False) for m in facet.messages]
    tree["suffix_messages"] = [
        [_message_tree(m, block_always=True) for m in group] for group in facet.suffix_messages
    ]
    if facet.no_match_pattern:
        tree["no_match_pattern"] = facet.no_match_pattern
    return tree


def _message_tree(message: dict[str, Any], block_always: bool) -> Any:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

    tree = CommentedMap()
    for key, value in message.items():
        if key == "content" and isinstance(value, str):
            if not value.strip() or _UNSAFE_CHAR.search(value):
                value = DoubleQuotedScalarString(value)
            elif "\n" in value or block_always:
                value = LiteralScalarString(value)
        tree[key] = value
    return tree


def write_new_prompt_file(path: Path | str, facets: list[FacetPrompt]) -> dict[str, str]:
    """Write a new prompt file atomically (used by dataset create); returns {facet name: prompt_sha256}."""
    path = Path(path)
    text = build_prompt_yaml(facets)
    if facets:
        _, loaded = parse_prompt_text(text, path)
        if [f.model_dump() for f in loaded] != [f.model_dump() for f in facets]:
            raise PromptFileError(f"{path}: the prompt file would not read back the same prompts")
    atomic_write_bytes(path, text.encode("utf-8"))
    return {f.facet_name: f.prompt_sha256 for f in facets}
