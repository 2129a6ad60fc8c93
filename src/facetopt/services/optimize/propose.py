"""The proposer: a sample of train failures and the facet prompt in, one small general edit out.

Each candidate gets its own seeded sample of train false positives and false negatives (errors are
not shown: they say nothing about the prompt). The request asks for structured output (a JSON
schema `response_format` with `hypothesis` and `prompt`); an endpoint that refuses it (HTTP 400
or 422) is asked again in text, in the `HYPOTHESIS:` / `PROMPT:` layout, and the rest of the run
asks it in text. Either way the reply is read by facets/prompts/proposal_reply.py, which takes the prompt
out of the shapes chat models write and refuses, with the reason, a reply it cannot place or one
cut at the token limit; a refusal is recorded as a failed proposal.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facetopt.clients.llm.client import ChatRequest, ChatResult, Endpoint
from facetopt.facets.prompts.proposal_reply import read_proposal
from facetopt.services.optimize.screen import RowScore

if TYPE_CHECKING:
    from facetopt.services.optimize.calls import Batch, Caller

PROPOSER_MAX_TOKENS = 4000
TRACE_CHARS = 1500  # of each failure's trace shown to the proposer
TASK = (
    "You improve one facet prompt. A facet prompt asks a model to extract one value (or a no-match "
    "token such as NONE) from a support conversation. You are shown the current prompt and some "
    "training conversations where the model got the decision wrong: `fp` means it gave a value "
    "where the label is no match, `fn` that it said no match where the label has a value.\n"
    "Propose ONE small, general change (add or clarify one sentence) aimed at what these failures "
    "have in common. Never copy text from the conversations or the labels into the prompt; keep the "
    "no-match token and the prompt's length about the same.\n"
)
INSTRUCTION = (
    TASK + "Reply in exactly this layout, nothing before it:\n"
    "HYPOTHESIS: <one line: why the change should help>\n"
    "PROMPT:\n"
    "<the whole revised prompt>"
)
STRUCTURED_INSTRUCTION = (
    TASK + "Reply with a JSON object: `hypothesis` (one line: why the change should help) and `prompt` "
    "(the whole revised prompt, exactly as it should be saved: no markup, no notes)."
)
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "prompt_edit",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"hypothesis": {"type": "string"}, "prompt": {"type": "string"}},
            "required": ["hypothesis", "prompt"],
            "additionalProperties": False,
        },
    },
}
# what an endpoint that does not take `response_format` answers: then it is asked in text
STRUCTURED_REFUSED = ("HTTP 400", "HTTP 422")


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
    endpoint: Endpoint,
    prompt: str,
    sample: list[RowScore],
    slot: int,
    of: int,
    round_: int,
    structured: bool = True,
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
    system = STRUCTURED_INSTRUCTION if structured else INSTRUCTION
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    extra = {"response_format": RESPONSE_FORMAT} if structured else None
    return ChatRequest.build(endpoint, messages, max_tokens=PROPOSER_MAX_TOKENS, extra_body=extra)


def is_structured(request: ChatRequest) -> bool:
    return bool(request.extra_body and "response_format" in request.extra_body)


def text_request(endpoint: Endpoint, request: ChatRequest) -> ChatRequest:
    """The same proposal asked in text, for an endpoint that refused structured output."""
    messages = [{"role": "system", "content": INSTRUCTION}, *request.messages[1:]]
    return ChatRequest.build(endpoint, messages, max_tokens=request.max_tokens)


def refused_structured(result: ChatResult) -> bool:
    return bool(result.error and result.error.startswith(STRUCTURED_REFUSED))


def ask_proposer(
    caller: Caller, request: ChatRequest, parent: str, spend: Callable[[Batch], None]
) -> Proposal:
    """One proposal: asked as `request`; asked again in text when the endpoint refuses structured
    output (remembered on the caller: later requests are built in text)."""
    batch = caller.run([request], "proposer")
    spend(batch)
    result = batch.results[request.key]
    if is_structured(request) and refused_structured(result):
        caller.text_only = True
        request = text_request(caller.endpoint, request)
        batch = caller.run([request], "proposer")
        spend(batch)
        result = batch.results[request.key]
    return parse_proposal(result.text, result.error, parent)


def parse_proposal(reply: str | None, error: str | None = None, parent: str = "") -> Proposal:
    """The proposal in a reply (`parent`: the prompt the proposer was shown), or why there is none."""
    if error or not reply:
        return Proposal(None, None, error=f"proposer call failed: {error or 'empty reply'}")
    reading = read_proposal(reply, parent=parent)
    if reading.prompt is None:
        return Proposal(None, reading.hypothesis, reading.family, error=f"proposal refused: {reading.reason}")
    return Proposal(reading.prompt, reading.hypothesis, family=reading.family)
