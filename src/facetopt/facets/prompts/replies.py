"""Reading a model's reply as a person would: the value of a facet, a label or a second opinion.

Real models wrap a short answer in what chat models usually write: a `<think>` block, a code
fence, a `Label:` / `Answer:` preface, a "Here is the label:" line, quotes or bold, an
explanation after it. `read_value` takes the value out of those shapes and refuses, with the
reason, a reply it cannot place (several different code blocks, nothing left once the markup is
gone) or one cut at the token limit. Reading is idempotent: a value read again is unchanged, so a
cached value and a fresh reply read the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from facetopt.facets.data.text import strip_think

CUT_AT_LIMIT = "the reply was cut at the token limit (finish_reason: length)"

# `Label:`, `**Answer:**`, `Final answer -`, `### Output:` as the first thing of a reply
_PREFACE_RE = re.compile(
    r"^[ \t#>*_]*(?:(?:the|my)[ \t]+)?(?:final[ \t]+)?(?:facet[ \t]+)?"
    r"(?:label|answer|output|value|result|response|extracted[ \t]+value)(?:[ \t]+is)?"
    r"[ \t]*[*_]*[ \t]*[:：][ \t]*[*_]*[ \t]*",
    re.IGNORECASE,
)
# "Sure! Here is the label:" on a line of its own, before the value
_LEAD_IN_RE = re.compile(
    r"^[ \t*_]*(?:sure|certainly|okay|ok|of course|here(?:'s|’s| is| are)|based on|after (?:reading|reviewing"
    r"|analy[sz]ing))\b[^\n]*[:：][ \t*_]*$",
    re.IGNORECASE,
)
# what ends the value: an explanation or note after it, on a line of its own
NOTE_RE = re.compile(
    r"^[ \t>*_(\[]*(?:explanation|reasoning|rationale|justification|note|notes|why|confidence|evidence"
    r"|reason|because)\b[^\n]{0,20}?[*_]*[ \t]*[:：—–-]",
    re.IGNORECASE,
)
_RULE_RE = re.compile(r"^[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[ \t]*$")
_WRAPPERS = (
    ("**", "**"),
    ("__", "__"),
    ('"', '"'),
    ("“", "”"),
    ("'", "'"),
    ("‘", "’"),
    ("`", "`"),
    ("«", "»"),
)
VALUE_KEYS = ("label", "value", "answer", "output", "result", "facet_value")
# a reply of one line with nothing any rule above reacts to (a tag, braces, a fence, a colon, a
# wrapper at its start) is its own value: most facet outputs are, and reading them is most of a parse
_MARKUP_RE = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029<{`~:：]")
_WRAPPER_STARTS = tuple(opening for opening, _ in _WRAPPERS)


@dataclass(frozen=True)
class Reading:
    """A reply's value, or why it has none a person could read."""

    value: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Fence:
    start: int  # line index of the opening fence
    end: int | None  # line index of the closing fence (None: never closed)
    info: str  # the language tag
    body: str


def fences(lines: list[str]) -> list[Fence]:
    """The fenced code blocks of a text's lines, in order; an unclosed one runs to the end."""
    found: list[Fence] = []
    index = 0
    while index < len(lines):
        opening = _FENCE_RE.match(lines[index])
        if opening is None:
            index += 1
            continue
        marker = opening.group(1)
        close = next(
            (
                j
                for j in range(index + 1, len(lines))
                if lines[j].strip().startswith(marker[0] * len(marker))
                and not lines[j].strip().strip(marker[0])
            ),
            None,
        )
        body = "\n".join(lines[index + 1 : close if close is not None else len(lines)])
        found.append(Fence(index, close, opening.group(2).lower(), body))
        if close is None:
            break
        index = close + 1
    return found


def json_field(text: str, keys: tuple[str, ...]) -> dict | None:
    """The reply as a JSON object (possibly in a ```json fence) when it is one, else None."""
    stripped = text.strip()
    lines = stripped.splitlines()
    blocks = fences(lines)
    if len(blocks) == 1 and blocks[0].start == 0 and blocks[0].end == len(lines) - 1:
        stripped = blocks[0].body.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        decoded = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(decoded, dict) or not any(isinstance(decoded.get(k), str) for k in keys):
        return None
    return decoded


def read_value(reply: str | None, finish_reason: str | None = None) -> Reading:
    """The value a person reading `reply` would take, or the reason there is none."""
    if finish_reason == "length":
        return Reading(None, CUT_AT_LIMIT)
    if reply and _MARKUP_RE.search(reply) is None and (plain := reply.strip()):
        if not plain.startswith(_WRAPPER_STARTS):
            return Reading(plain)
    text = strip_think(reply)
    if not text:
        return Reading(None, "empty reply")
    for _ in range(6):  # shapes nest (a fenced `Label: "X"`): read until nothing changes
        before = text
        step = _read_once(text)
        if isinstance(step, Reading):
            return step
        text = step.strip()
        if text == before:
            break
    if not text:
        return Reading(None, "nothing is left of the reply once its markup is removed")
    return Reading(text)


def _read_once(text: str) -> str | Reading:
    decoded = json_field(text, VALUE_KEYS)
    if decoded is not None and len(decoded) == 1:
        return str(next(iter(decoded.values())))
    lines = text.splitlines()
    blocks = fences(lines)
    if blocks:
        bodies = {b.body.strip() for b in blocks}
        if len(bodies) > 1:
            return Reading(
                None, f"{len(blocks)} different code blocks: cannot tell which one holds the value"
            )
        return blocks[0].body
    if len(lines) > 1 and _LEAD_IN_RE.match(lines[0]):
        return "\n".join(lines[1:])
    preface = _PREFACE_RE.match(text)
    if preface is not None:
        text = text[preface.end() :]
        lines = text.splitlines()
    kept: list[str] = []
    for line in lines:
        if kept and any(k.strip() for k in kept) and (NOTE_RE.match(line) or _RULE_RE.match(line)):
            break
        kept.append(line)
    text = "\n".join(kept).strip()
    return unwrap(text)


def unwrap(text: str) -> str:
    """A value wrapped whole in bold, quotes or backticks, unwrapped (`"NONE"` -> `NONE`)."""
    for opening, closing in _WRAPPERS:
        inner = text[len(opening) : len(text) - len(closing)]
        if (
            len(text) > len(opening) + len(closing)
            and text.startswith(opening)
            and text.endswith(closing)
            and opening not in inner
            and closing not in inner
        ):
            return inner.strip()
    return text


def value_or_error(reply: str | None, finish_reason: str | None = None) -> tuple[str, str | None]:
    """(the reply's value, None), or ("", "unreadable reply: <why>"): a model output as it is scored."""
    reading = read_value(reply, finish_reason)
    if reading.value is None:
        return "", f"unreadable reply: {reading.reason}"
    return reading.value, None
