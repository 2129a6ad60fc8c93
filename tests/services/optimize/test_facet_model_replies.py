"""The facet model's output as the optimiser scores it, from a loopback server that wraps each value
as chat models do: scored as the bare value would be; a reply cut at the limit or with two
different code blocks is a failed row with the reason, never a value."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from facetopt.clients.llm.endpoints import Endpoint
from facetopt.facets.prompts.replies import CUT_AT_LIMIT
from facetopt.services.cost import CostBudget, UsageMeter
from facetopt.services.optimize.calls import Caller
from facetopt.services.optimize.screen import score_prompt
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import FACETS, make_rows

KEY = "sk-facet-model-replies"
ISSUES = FACETS[0]
ROWS = [r for r in make_rows(16) if r.input["facet_name"] == "Issues"]  # 8 rows, 4 traces twice
TICKET_RE = re.compile(r"User: ticket (\d+)")
# by the trace's ticket number (the row's index): how the server wraps the row's expected value
SHAPES = {
    0: "```\n{v}\n```",
    1: "**Answer:** {v}\n\nExplanation: see the second turn.",
    2: '<think>Checking the replies.</think>\nLabel: "{v}"',
    3: "{v}",
}


def _reply(body: dict) -> str | tuple[str, str]:
    match = TICKET_RE.search(str(body["messages"]))
    assert match is not None
    index = int(match.group(1))
    expected = str(next(r for r in ROWS if r.id == f"span{index:03d}:issues").expected)
    if index == 10:
        return expected[:8], "length"
    if index == 14:
        return "```\nNONE\n```\n```\nThe assistant gave no response.\n```"
    return SHAPES[(index // 2) % 4].format(v=expected)


def test_wrapped_outputs_score_as_their_values_and_unreadable_ones_fail_by_name(tmp_path: Path):
    with FakeOpenAIServer(reply=_reply, api_key=KEY) as server:
        endpoint = Endpoint(role="facet_model", model="gpt-4o", base_url=server.url, api_key=SecretStr(KEY))
        meter = UsageMeter("facet model", "gpt-4o", {"gpt-4o": (1.0, 1.0)}, CostBudget(None), 16)
        caller = Caller(
            endpoint, meter, tmp_path / "store.duckdb", True, timeout=10, deadline=5, concurrency=2
        )
        scored = score_prompt(caller, ISSUES, ROWS, "binary_decision_match", "gpt-4o", 512)
        caller.close()
    by_id = {s.row.id: s for s in scored.rows}
    cut, two_blocks = by_id["span010:issues"], by_id["span014:issues"]
    assert (cut.output, cut.error, cut.kind) == ("", CUT_AT_LIMIT, "error")
    assert two_blocks.output == "" and two_blocks.kind == "error"
    assert (
        two_blocks.error == "unreadable reply: 2 different code blocks: cannot tell which one holds the value"
    )
    readable = [s for s in scored.rows if s.row.id not in ("span010:issues", "span014:issues")]
    assert len(readable) == 6
    # each output is the row's own expected value, unwrapped: every decision matches
    assert [(s.output, s.error, s.value, s.kind) for s in readable] == [
        (s.row.expected, None, 1.0, None) for s in readable
    ]
