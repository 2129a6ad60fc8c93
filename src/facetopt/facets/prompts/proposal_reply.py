"""Reading the optimiser's proposer reply: the revised prompt, its hypothesis, nothing else.

A structured reply (a JSON object with `prompt`, as the JSON schema asks) is taken as it is. A
text reply is read the way a person reads it: the prompt sits under a heading in any case or
markup (`PROMPT:`, `**Revised prompt:**`, `### Prompt`, "Here is the revised prompt:"), in a code
fence or `\"\"\"` quotes, with a preface before it and a note after it that are not part of it.
Without a heading, a reply whose only code block is the prompt is read too. A reply that cannot be
placed (no heading, several code blocks, an unclosed block, an empty section) or that was cut at
the token limit is refused with the reason, never guessed at: a wrong prompt would be screened and
could be applied.

Lines that are in the parent prompt are the prompt's own, never a note or a heading, so a prompt
holding "Note: ..." keeps it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facetopt.facets.data.text import strip_think
from facetopt.facets.prompts.replies import CUT_AT_LIMIT, fences, json_field, unwrap

_M = r"[*_]{0,3}"  # bold / italic markup around a heading
_L = r"(?:(?:\d+[.)]|[-*•+])[ \t]+)?"  # a list marker before it ("2. Revised prompt:")
# `PROMPT:`, `**Revised prompt:**`, `### Prompt`, `## New facet prompt`, `Prompt (revised):`
_HEADING_RE = re.compile(
    rf"^[ \t]*{_L}(?P<hash>#{{1,6}}[ \t]*)?(?P<open>{_M})[ \t]*(?:(?:the|my|your)[ \t]+)?"
    r"(?:(?:revised|new|updated|improved|edited|final|proposed|full|complete|whole|rewritten|modified)[ \t]+)*"
    rf"(?:facet[ \t]+)?prompt(?:[ \t]*\([^)\n]*\))?[ \t]*(?P<c1>[:：])?[ \t]*(?P<close>{_M})[ \t]*(?P<c2>[:：])?"
    r"[ \t]*(?P<rest>.*)$",
    re.IGNORECASE,
)
# a lead-in line that ends with "prompt:" ("Here's the updated prompt:")
_LEAD_IN_RE = re.compile(rf"^[ \t]*{_M}[^\n:`]{{0,80}}\bprompt\b[^\n:`]{{0,20}}[:：][ \t]*{_M}[ \t]*$", re.I)
# the headings of other sections: where the prompt's section ends
_SECTION_RE = re.compile(
    rf"^[ \t]*{_L}(?:#{{1,6}}[ \t]*)?{_M}[ \t]*(?:hypothesis|family|rationale|explanation|reasoning|changes?"
    rf"|change made|what changed|why|summary)\b[^\n:]{{0,20}}?{_M}[ \t]*(?:[:：]|{_M}$)",
    re.IGNORECASE,
)
_FIELD_RE = {
    name: re.compile(
        rf"^[ \t]*{_L}(?:#{{1,6}}[ \t]*)?{_M}[ \t]*{name}[ \t]*{_M}[ \t]*[:：][ \t]*{_M}[ \t]*(.*)$", re.I
    )
    for name in ("hypothesis", "family")
}
# what only a note says: the change described, a sign-off
_NOTE_START_RE = re.compile(
    r"^[ \t>*_(\[]*(?:(?:this|the|my)[ \t]+(?:change|edit|revision|update|addition|new sentence|added sentence"
    r"|revised prompt|modification|new line|added line)\b|I(?:'ve|[ \t]+have)?[ \t]+(?:added|changed|clarified"
    r"|revised|updated|kept|made|inserted|replaced|tightened|rewrote|appended)\b|(?:let me know|hope this helps"
    r"|would you like|do you want|want me to|shall I|if you(?:'d| would) like|feel free)\b|(?:changes?|change made|what changed|summary|hypothesis)\b[^\n]{0,20}?[*_]*[ \t]*[:：—–-])",
    re.IGNORECASE,
)
_EXPLAINS_RE = re.compile(
    r"^[ \t>*_(\[]*(?:explanation|rationale|reasoning|justification|why)\b[^\n]{0,20}?[*_]*[ \t]*[:：—–-]",
    re.I,
)
_NOTE_LABEL_RE = re.compile(r"^[ \t>*_(\[]*(?:note|notes|nb|n\.b\.)[*_]*[ \t]*[:：—–-]", re.I)
_ABOUT_EDIT_RE = re.compile(
    r"\b(?:I|I've|prompt|change|changed|edit|edited|added|original|revised|revision|new sentence|kept)\b",
    re.I,
)
# "(Added the last sentence.)", "*I changed one line*": an aside about the edit on a line of its own
_ASIDE_RE = re.compile(r"^[ \t]*(?:\(.*\)|\[.*\]|\*[^*].*[^*]\*|_[^_].*[^_]_)[ \t]*$")
# <prompt>...</prompt>, <revised_prompt>...</revised_prompt> (never the request's <current_prompt>)
_TAG_NAME = r"(?:(?:revised|new|updated|improved|proposed|final|edited)[_ -])?prompt"
_TAG_RE = re.compile(rf"<(?P<tag>{_TAG_NAME})>(?P<body>.*?)</(?P=tag)>", re.IGNORECASE | re.DOTALL)
_OPEN_TAG_RE = re.compile(rf"<{_TAG_NAME}>", re.IGNORECASE)
_HYPOTHESIS_TAG_RE = re.compile(r"<hypothesis>(.*?)</hypothesis>", re.IGNORECASE | re.DOTALL)
# a lead-in line before the fence: "Here it is:", "The revised prompt:", "Below:"
_LEAD_IN_LINE_RE = re.compile(
    r"^[ \t*_]*(?:(?:here|below|sure|ok|okay|certainly|the|revised|updated|new|full)\b|[^\n]*\bprompt\b)[^\n]*[:：][ \t*_]*$",
    re.IGNORECASE,
)
# a sentence that introduces the prompt: "Here is the revised prompt.", "Updated version below"
_PREFACE_RE = re.compile(
    r"^[ \t*_]*(?:here(?:'s|’s| is| are)\b|below\b|see below\b|as follows\b|sure\b|certainly\b"
    r"|(?:the |my )?(?:revised|updated|new|improved|full|complete)(?: \w+)? (?:prompt|version)\b)",
    re.IGNORECASE,
)
_RULE_RE = re.compile(r"^[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*$")
_TRIPLE_QUOTES = ('"""', "'''")


@dataclass(frozen=True)
class ProposalReading:
    prompt: str | None
    hypothesis: str | None = None
    family: str | None = None
    reason: str | None = None  # why no prompt could be read


def read_proposal(reply: str | None, finish_reason: str | None = None, parent: str = "") -> ProposalReading:
    """The revised prompt in a proposer's reply (JSON or text), or the reason it cannot be read."""
    if finish_reason == "length":
        return ProposalReading(None, reason=CUT_AT_LIMIT)
    reply = strip_think(reply)
    if not reply:
        return ProposalReading(None, reason="empty reply")
    own = {line.strip() for line in parent.splitlines() if line.strip()}
    structured = json_field(reply, ("prompt",))
    if structured is not None:  # the schema's answer: taken as it is, unless fenced or quoted
        prompt = str(structured["prompt"]).strip()
        return _checked(
            _clean(prompt, own) if prompt.startswith(("```", "~~~", *_TRIPLE_QUOTES)) else prompt,
            _one_line(structured.get("hypothesis")),
            _one_line(structured.get("family")),
        )
    tagged = list(_TAG_RE.finditer(reply))
    if tagged:
        hypothesis = _HYPOTHESIS_TAG_RE.search(reply)
        outside = (reply[: tagged[-1].start()] + reply[tagged[-1].end() :]).splitlines()
        return _checked(
            _clean(tagged[-1].group("body"), own),
            _one_line(hypothesis.group(1)) if hypothesis else _field(outside, "hypothesis"),
            _field(outside, "family"),
        )
    if _OPEN_TAG_RE.search(reply):
        return ProposalReading(None, reason="the tag holding the prompt is never closed")
    lines = reply.strip().splitlines()
    heading = _prompt_heading(lines, own)
    if heading is None:
        section, fields_from = _unheaded(lines)
        if isinstance(section, ProposalReading):
            return section
    else:
        index, rest = heading
        end = next(
            (
                j
                for j in range(index + 1, len(lines))
                if lines[j].strip() not in own and _SECTION_RE.match(lines[j])
            ),
            len(lines),
        )
        body = lines[index + 1 : end]
        if rest and (rest in own or not (_PREFACE_RE.match(rest) or rest.endswith((":", "：")))):
            body = [rest, *body]  # the prompt starts on the heading's line ("PROMPT: You review...")
        section = "\n".join(body)
        fields_from = lines[:index] + lines[end:]
    return _checked(_clean(section, own), _field(fields_from, "hypothesis"), _field(fields_from, "family"))


def _checked(prompt: str | ProposalReading, hypothesis: str | None, family: str | None) -> ProposalReading:
    if isinstance(prompt, ProposalReading):
        return ProposalReading(None, hypothesis, family, prompt.reason)
    if not prompt:
        return ProposalReading(None, hypothesis, family, "the reply's prompt section is empty")
    return ProposalReading(prompt, hypothesis, family and family.split()[0])


def _prompt_heading(lines: list[str], own: set[str]) -> tuple[int, str] | None:
    """(line index, text on the heading's line) of the prompt heading: the last one, so a preface
    line that mentions the prompt is not taken for it; a lead-in line only when there is no heading."""
    headings: list[tuple[int, str]] = []
    lead_ins: list[tuple[int, str]] = []
    open_fence = False
    for index, line in enumerate(lines):
        if line.strip().startswith(("```", "~~~")):
            open_fence = not open_fence
        if open_fence or line.strip() in own:
            continue
        match = _HEADING_RE.match(line)
        if match is not None:
            colon = match.group("c1") or match.group("c2")
            marked = match.group("hash") or (match.group("open") and match.group("close"))
            rest = match.group("rest").strip()
            if colon or (marked and not rest):
                headings.append((index, rest))
                continue
        if _LEAD_IN_RE.match(line):
            lead_ins.append((index, ""))
    # a heading first; a line ending with "prompt:" only when the reply has no heading
    for found in (headings, lead_ins):
        if found:
            return found[-1]
    return None


def _unheaded(lines: list[str]) -> tuple[str | ProposalReading, list[str]]:
    """With no heading: the reply's only code block (or triple-quoted block) is the prompt."""
    blocks = [b for b in fences(lines) if b.info not in ("json",)]
    if len(blocks) > 1:
        return ProposalReading(
            None,
            reason=f"{len(blocks)} code blocks and no PROMPT heading: cannot tell which one is the prompt",
        ), []
    if len(blocks) == 1:
        block = blocks[0]
        if block.end is None:
            return ProposalReading(None, reason="the code block holding the prompt is never closed"), []
        return "\n".join(lines[block.start : block.end + 1]), lines[: block.start] + lines[block.end + 1 :]
    quoted = [i for i, line in enumerate(lines) if line.strip() in _TRIPLE_QUOTES]
    if len(quoted) >= 2:
        return "\n".join(lines[quoted[0] : quoted[-1] + 1]), lines[: quoted[0]] + lines[quoted[-1] + 1 :]
    return ProposalReading(
        None,
        reason="cannot find the prompt in the reply: no PROMPT heading, code block or JSON `prompt` field",
    ), []


def _clean(section: str, own: set[str]) -> str | ProposalReading:
    """The prompt in a section: the inside of its fence or quotes, without a lead-in or a note."""
    lines = section.strip("\n").splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    # "Here it is:" before a fence or quotes; "Here is the revised prompt." before the prompt
    if len(lines) > 1 and lines[0].strip() not in own:
        if _LEAD_IN_LINE_RE.match(lines[0]) and (
            lines[1].strip().startswith(("```", "~~~")) or lines[1].strip() in _TRIPLE_QUOTES
        ):
            lines = lines[1:]
        elif _PREFACE_RE.match(lines[0]):
            lines = lines[1:]
            while lines and not lines[0].strip():
                lines.pop(0)
    if lines and (lines[0].strip().startswith(("```", "~~~")) or lines[0].strip() in _TRIPLE_QUOTES):
        close = _closing_line(lines)
        if close is None:
            return ProposalReading(
                None, reason="the code block or quotes holding the prompt are never closed"
            )
        if any(line.strip().startswith(("```", "~~~", *_TRIPLE_QUOTES)) for line in lines[close + 1 :]):
            return ProposalReading(
                None,
                reason="more than one code block under the prompt heading: cannot tell which one is the prompt",
            )
        return "\n".join(lines[1:close]).strip()
    if lines and lines[0].strip().startswith(_TRIPLE_QUOTES):  # """The prompt ... """ on its own lines
        text = "\n".join(lines).strip()
        quote = text[:3]
        if text.endswith(quote) and len(text) > 6:
            return text[3:-3].strip()
    if lines and all(line.lstrip().startswith(">") for line in lines if line.strip()):  # a block quote
        lines = [re.sub(r"^[ \t]*>[ \t]?", "", line) for line in lines]
    kept: list[str] = []
    for line in lines:
        paragraph_start = not kept or not kept[-1].strip()
        if any(k.strip() for k in kept) and line.strip() not in own and _is_note(line, paragraph_start):
            break
        kept.append(line)
    return unwrap("\n".join(kept).strip())


def _closing_line(lines: list[str]) -> int | None:
    """The line closing the fence (or triple quotes) opened by lines[0]; a fence with a language
    inside it opens a block of the prompt's own, closed by the next bare fence."""
    opening = lines[0].strip()
    if opening in _TRIPLE_QUOTES:
        return next((i for i in range(1, len(lines)) if lines[i].strip() == opening), None)
    char, depth = opening[0], 0
    for index in range(1, len(lines)):
        stripped = lines[index].strip()
        if not stripped.startswith(char * 3):
            continue
        if stripped.strip(char):
            depth += 1
        elif depth:
            depth -= 1
        else:
            return index
    return None


def _is_note(line: str, paragraph_start: bool) -> bool:
    """A line that starts what follows the prompt: a rule, or a note about the change."""
    if _RULE_RE.match(line) or _NOTE_START_RE.match(line):
        return True
    if _ASIDE_RE.match(line) and (
        _ABOUT_EDIT_RE.search(line) or re.search(r"\b(?:new|sentence|line)\b", line)
    ):
        return True
    if not paragraph_start:
        return False
    if _EXPLAINS_RE.match(line):
        return True
    # "Note: ..." may be a sentence of the prompt itself; a note about the edit talks about the edit
    return bool(_NOTE_LABEL_RE.match(line) and _ABOUT_EDIT_RE.search(line))


def _field(lines: list[str], name: str) -> str | None:
    for index, line in enumerate(lines):
        match = _FIELD_RE[name].match(line)
        if match is not None:
            value = match.group(1).strip().strip("*_").strip()
            if not value:  # the heading on its own line: the next line holds it
                value = next((line.strip() for line in lines[index + 1 :] if line.strip()), "")
            return value or None
    return None


def _one_line(value: object) -> str | None:
    return " ".join(str(value).split()) or None if isinstance(value, str) else None
