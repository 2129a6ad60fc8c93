"""The proposer: a sample of train failures and the facet prompt in, one small general edit out.

Each candidate gets its own seeded sample of train false positives and false negatives (errors are
not shown: they say nothing about the prompt). The reply must give a one-line hypothesis and the
whole revised prompt (`HYPOTHESIS:` then `PROMPT:`; not JSON, which chat clients may take for a
content part); anything else is recorded as a failed proposal.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from facetopt.clients.llm.client import ChatRequest, Endpoint
from facetopt.services.optimize.screen import RowScore

PROPOSER_MAX_TOKENS = 4000
TRACE_CHARS = 1500  # of each failure's trace shown to the proposer
INSTRUCTION = (
    "You improve one facet prompt. A facet prompt asks a model to extract one value (or a no-match "
    "token such as NONE) from a support conversation. You are shown the current prompt and some "
    "training conversations where the model got the decision wrong: `fp` means it gave a value "
    "where the label is no match, `fn` that it said no match where the label has a value.\n"
    "Propose ONE small, general change (add or clarify one sentence) aimed at what these failures "
    "have in common. Never copy text from the conversations or the labels into the prompt; keep the "
    "no-match token and the prompt's length about the same.\n"
    "Reply in exactly this layout, nothing before it:\n"
    "HYPOTHESIS: <one line: why the change should help>\n"
    "PROMPT:\n"
    "<the whole revised prompt>"
)


@dataclass
class Proposal:
    prompt: str | None
    hypothesis: str | None
    family: str | None = None
    error: str | None = None


def failure_sample(failures: list[RowScore], size: int, seed: str) -> list[RowScore]:
    """Up to `size` failures, false positives and false negatives alternating, seeded."""
    rng = random.Random(seed)
    by_kind = {kind: [f for f in failures if f.kind == kind] for kind in ("fp", "fn")}
    for rows in by_kind.values():
        rng.shuffle(rows)
    chosen: list[RowScore] = []
    while len(chosen) < size and any(by_kind.values()):
        for kind in ("fp", "fn"):
            if by_kind[kind] and len(chosen) < size:
                chosen.append(by_kind[kind].pop())
    return sorted(chosen, key=lambda f: f.row.id)


def proposer_request(
    endpoint: Endpoint, prompt: str, sample: list[RowScore], slot: int, of: int, round_: int
) -> ChatRequest:
    failures = [
        {
            "kind": f.kind,
            "trace": str(f.row.input.get("preprocessed_text") or "")[:TRACE_CHARS],
            "expected": f.row.expected,
            "output": f.output,
        }
        for f in sample
    ]
    text = (
        f"<current_prompt>\n{prompt}\n</current_prompt>\n\n"
        f"<failures>\n{json.dumps(failures, indent=1, ensure_ascii=False)}\n</failures>\n\n"
        f"Proposal {slot + 1} of {of} in round {round_ + 1}: the other proposals see other failures."
    )
    messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": text}]
    return ChatRequest.build(endpoint, messages, max_tokens=PROPOSER_MAX_TOKENS)


_HYPOTHESIS_RE = re.compile(r"^\s*HYPOTHESIS:[ \t]*(.*)$", re.MULTILINE)
_FAMILY_RE = re.compile(r"^\s*FAMILY:[ \t]*(\S+)", re.MULTILINE)
_PROMPT_RE = re.compile(r"^\s*PROMPT:[ \t]*\n?(.*)\Z", re.MULTILINE | re.DOTALL)


def parse_proposal(reply: str | None, error: str | None = None) -> Proposal:
    if error or not reply:
        return Proposal(None, None, error=f"proposer call failed: {error or 'empty reply'}")
    prompt_match = _PROMPT_RE.search(reply)
    if prompt_match is None:
        return Proposal(None, None, error=f"the proposer's reply has no PROMPT: section: {reply[:200]!r}")
    prompt = prompt_match.group(1).strip()
    if prompt.startswith("```"):  # a fenced block: its inside
        prompt = prompt.strip("`").partition("\n")[2].strip()
    if not prompt:
        return Proposal(None, None, error="the proposer returned an empty prompt")
    hypothesis = _HYPOTHESIS_RE.search(reply[: prompt_match.start()])
    family = _FAMILY_RE.search(reply[: prompt_match.start()])
    return Proposal(
        prompt,
        hypothesis.group(1).strip() or None if hypothesis else None,
        family=family.group(1) if family else None,
    )
