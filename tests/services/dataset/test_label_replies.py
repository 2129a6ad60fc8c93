"""`dataset create` with a labeller that answers as chat models do: each label wrapped in a fence, a
`Label:` preface, a lead-in line, an explanation, JSON. The dataset holds the same labels as with a
labeller that answers the bare value; a reply cut at the token limit is a failed row, named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from facetopt.facets.prompts.replies import CUT_AT_LIMIT
from facetopt.simulation.transport import simulate
from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.slow

KEY = "sk-label-replies-secret"
LIMITS = ["--positive-limit", "4", "--negative-limit", "4"]
SHAPES = (
    "```\n{v}\n```",
    "Label: {v}",
    "**Answer:** {v}\n\nExplanation: the conversation shows it.",
    "Sure! Here is the label:\n\n{v}",
    "<think>Reading each turn.</think>\n**{v}**",
)


def _bare(body: dict) -> str:
    status, payload = simulate("POST", "/v1/chat/completions", body)
    assert status == 200
    return payload["choices"][0]["message"]["content"]


def _cut(body: dict) -> bool:  # about one reply in five is cut at the token limit
    return int(hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest(), 16) % 5 == 0


def _shaped(body: dict) -> str | tuple[str, str]:
    value = _bare(body)
    if _cut(body):
        return value[:12], "length"
    digest = int(hashlib.sha256(value.encode()).hexdigest(), 16)
    if digest % (len(SHAPES) + 1) == len(SHAPES):
        return json.dumps({"label": value})
    return SHAPES[digest % len(SHAPES)].format(v=value)


def _expected_by_id(root: Path) -> dict[str, str]:
    (run_dir,) = [p for p in root.iterdir() if (p / "dataset_rows.jsonl").is_file()]
    rows = [json.loads(line) for line in (run_dir / "dataset_rows.jsonl").read_text().splitlines()]
    return {row["id"]: row["expected"] for row in rows}


def _create(root: Path, server: FakeOpenAIServer) -> dict:
    env = {"FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url, "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": KEY}
    return json_out(run_cli(*create_args(root, *LIMITS, "--json"), env=env))


def test_a_chatty_labeller_gives_the_labels_a_bare_one_gives_and_a_cut_reply_fails_by_name(tmp_path: Path):
    with FakeOpenAIServer(api_key=KEY) as bare:
        _create(tmp_path / "bare", bare)
    with FakeOpenAIServer(reply=_shaped, api_key=KEY) as chatty:
        summary = _create(tmp_path / "chatty", chatty)
        chatty_requests = chatty.requests
        shaped_replies = sum(
            1 for r in chatty.requests if not _cut(r.body) and _shaped(r.body) != _bare(r.body)
        )
    plain, read = _expected_by_id(tmp_path / "bare"), _expected_by_id(tmp_path / "chatty")
    assert shaped_replies > 0 and read
    assert {row_id: plain[row_id] for row_id in read if row_id in plain} == {
        row_id: value for row_id, value in read.items() if row_id in plain
    }
    assert len(set(read) & set(plain)) >= len(read) // 2
    failed = summary["failed_rows"]
    assert len(failed) == sum(_cut(r.body) for r in chatty_requests) > 0
    assert all(f["reason"] == CUT_AT_LIMIT for f in failed)
    assert not any(len(value) <= 12 and value != "NONE" for value in read.values())
