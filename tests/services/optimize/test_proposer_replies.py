"""`facetopt optimize` with its proposer at a loopback OpenAI-compatible server that answers as chat
models do: markdown around the prompt, structured output when the endpoint takes a JSON schema,
replies cut at the token limit or holding no prompt a reader could place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from facetopt.facets.prompts.replies import CUT_AT_LIMIT
from tests.cli.dataset_helpers import SMALL, create_args, json_out, run_cli
from tests.fakes.openai_server import Failure, FakeOpenAIServer

pytestmark = pytest.mark.slow

KEY = "sk-proposer-replies-secret"
# an edit the simulated facet model does not reward, so no candidate wins and no validation eval runs
SENTENCE = "Keep the answer to the value itself, on a single line."
CURRENT_RE = re.compile(r"<current_prompt>\n(.*?)\n</current_prompt>", re.DOTALL)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proposer")
    assert run_cli(*create_args(root, *SMALL, "--json")).exit_code == 0
    assert run_cli("bootstrap", "--output-root", str(root), "--json").exit_code == 0
    return root


def _optimize(root: Path, server: FakeOpenAIServer) -> dict:
    result = run_cli(
        "optimize", "--facet", "Issues", "--candidates", "2", "--rounds", "1",
        "--dataset", "Facet groundtruth", "--target-project", "Facet optimizer", "--backend", "local",
        "--output-root", str(root), "--proposer-api-base", server.url, "--json",
        env={"FACET_OPTIMIZER_PROPOSER_API_KEY": KEY},
    )  # fmt: skip
    return json_out(result)


def _parent(body: dict) -> str:
    match = CURRENT_RE.search(body["messages"][-1]["content"])
    assert match is not None
    return match.group(1)


def _markdown(body: dict) -> str:
    return (
        "Looking at these failures, the model pads its answer.\n\n"
        "**Hypothesis:** asking for the bare value cleans the decision.\n\n"
        f"**Revised prompt:**\n\n```\n{_parent(body)}\n{SENTENCE}\n```\n\n"
        "This adds one sentence at the end; the rest is unchanged."
    )


def test_a_markdown_speaking_proposer_without_structured_output_gets_its_edits_read_exactly(state: Path):
    def refuse_schema(body: dict) -> Failure | None:
        if "response_format" in body:
            return Failure(
                400, message="Invalid parameter: 'response_format' is not supported with this model."
            )
        return None

    with FakeOpenAIServer(reply=_markdown, fail_when=refuse_schema, api_key=KEY) as server:
        report = _optimize(state, server)
        bodies = [r.body for r in server.requests]
    # asked with a JSON schema once; refused, so asked in text from then on
    assert ["response_format" in b for b in bodies] == [True, False, False]
    expected = {_parent(b) + "\n" + SENTENCE for b in bodies}
    candidates = report["candidates"]
    assert len(candidates) == 2 and all(c["status"] != "proposal_failed" for c in candidates)
    assert {c["prompt_text"] for c in candidates} == expected
    assert all(c["hypothesis"] == "asking for the bare value cleans the decision." for c in candidates)


def test_an_endpoint_taking_a_json_schema_answers_json_and_it_is_read_as_is(state: Path):
    def structured(body: dict) -> str:
        assert body["response_format"]["type"] == "json_schema"
        return json.dumps({"hypothesis": "bare value", "prompt": f"{_parent(body)}\n{SENTENCE}"})

    with FakeOpenAIServer(reply=structured, api_key=KEY) as server:
        report = _optimize(state, server)
        bodies = [r.body for r in server.requests]
    assert len(bodies) == 2 and all("response_format" in b for b in bodies)
    assert [c["prompt_text"] for c in report["candidates"]] == [_parent(b) + "\n" + SENTENCE for b in bodies]


def test_a_reply_cut_at_the_limit_or_without_a_prompt_is_refused_with_the_reason(state: Path):
    def unusable(body: dict) -> tuple[str, str]:
        if "Proposal 1 of" in body["messages"][-1]["content"]:
            return f"PROMPT:\n{_parent(body)[:40]}", "length"
        return "I would add a sentence asking for the bare value.", "stop"

    with FakeOpenAIServer(reply=unusable, api_key=KEY) as server:
        report = _optimize(state, server)
    first, second = report["candidates"]
    assert first["status"] == second["status"] == "proposal_failed"
    assert not first["prompt_text"] and not second["prompt_text"]
    assert first["error"] == f"proposer call failed: {CUT_AT_LIMIT}"
    assert second["error"].startswith("proposal refused: cannot find the prompt in the reply")
    assert report["verdict"] != "KEEP" and not report["applied"]
