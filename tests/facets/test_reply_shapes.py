"""Every reply shape of tests/fixtures/reply_shapes.yaml through every reader: the proposer's
prompt, and the value of a label, a second opinion or a facet model output. Each case's expected
reading was written by hand, as a person reads the reply."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from facetopt.facets.data.parsing import output_text
from facetopt.facets.prompts.proposal_reply import read_proposal
from facetopt.facets.prompts.replies import CUT_AT_LIMIT, read_value, value_or_error
from facetopt.services.optimize.propose import parse_proposal

CORPUS = YAML(typ="safe").load((Path(__file__).parents[1] / "fixtures" / "reply_shapes.yaml").read_text())
CASES = CORPUS["cases"]
PROPOSALS = [c for c in CASES if c["kind"] == "proposal"]
VALUES = [c for c in CASES if c["kind"] == "value"]
# what must never be left in a prompt read from a reply
LEFTOVERS = ("```", '"""', "**", "###", "HYPOTHESIS", "PROMPT:", "Here's", "This adds", "I added", "Why this")


def _parent(case: dict) -> str:
    return case.get("parent") or CORPUS["parents"]["default"]


def test_the_corpus_holds_at_least_25_shapes_of_each_outcome():
    assert len(CASES) >= 25 and len({c["id"] for c in CASES}) == len(CASES)
    assert len(PROPOSALS) >= 20 and len(VALUES) >= 12
    assert sum("refuse" in c for c in CASES) >= 8


@pytest.mark.parametrize("case", PROPOSALS, ids=[c["id"] for c in PROPOSALS])
def test_the_proposer_reader_takes_the_prompt_a_person_would_or_names_why_not(case: dict):
    reading = read_proposal(case["reply"], case.get("finish_reason", "stop"), _parent(case))
    if "refuse" in case:
        assert reading.prompt is None and case["refuse"] in (reading.reason or "")
        return
    expected = case["expect"]
    assert reading.prompt == expected["prompt"], reading.reason
    if "hypothesis" in expected:
        assert reading.hypothesis == expected["hypothesis"]
    assert not [mark for mark in LEFTOVERS if mark in reading.prompt and mark not in expected["prompt"]]


@pytest.mark.parametrize("case", PROPOSALS, ids=[c["id"] for c in PROPOSALS])
def test_the_optimiser_records_the_same_prompt_or_a_refusal_with_the_reason(case: dict):
    if case.get("finish_reason") == "length":  # the client turns a cut reply into an error
        proposal = parse_proposal(None, CUT_AT_LIMIT, _parent(case))
        assert proposal.prompt is None and proposal.error == f"proposer call failed: {CUT_AT_LIMIT}"
        return
    proposal = parse_proposal(case["reply"], None, _parent(case))
    if "refuse" in case:
        assert proposal.prompt is None and proposal.error and case["refuse"] in proposal.error
        assert proposal.error.startswith("proposal refused: ")
    else:
        assert proposal.prompt == case["expect"]["prompt"] and proposal.error is None


@pytest.mark.parametrize("case", VALUES, ids=[c["id"] for c in VALUES])
def test_the_value_reader_takes_the_value_a_person_would_or_names_why_not(case: dict):
    reading = read_value(case["reply"], case.get("finish_reason", "stop"))
    output, error = value_or_error(case["reply"], case.get("finish_reason", "stop"))
    if "refuse" in case:
        assert reading.value is None and case["refuse"] in (reading.reason or "")
        assert (output, error) == ("", f"unreadable reply: {reading.reason}")
        return
    assert reading.value == case["expect"]["value"] and (output, error) == (reading.value, None)
    # reading is idempotent: a cached value reads the same as the reply it came from
    assert read_value(reading.value).value == reading.value


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_every_reader_refuses_every_shape_cut_at_the_token_limit(case: dict):
    assert read_value(case["reply"], "length").reason == CUT_AT_LIMIT
    assert read_proposal(case["reply"], "length", _parent(case)).reason == CUT_AT_LIMIT


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_every_shape_goes_through_both_readers_without_an_exception(case: dict):
    # a label reply sent to the proposer reader (and the reverse) is read or refused, never raised
    value = read_value(case["reply"])
    proposal = read_proposal(case["reply"], parent=_parent(case))
    assert (value.value is None) == bool(value.reason)
    assert (proposal.prompt is None) == bool(proposal.reason)


@pytest.mark.parametrize("case", [c for c in PROPOSALS if "expect" in c], ids=lambda c: c["id"])
def test_a_structured_reply_holding_the_expected_prompt_reads_back_exactly(case: dict):
    expected = case["expect"]["prompt"]
    reply = json.dumps({"hypothesis": "h", "prompt": expected})
    assert read_proposal(reply, "stop", _parent(case)).prompt == expected


@pytest.mark.parametrize("case", [c for c in VALUES if "expect" in c], ids=lambda c: c["id"])
def test_a_production_output_of_that_shape_is_bucketed_by_its_value(case: dict):
    # span outputs come as a string or chat-completion shaped; either way the same value
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": case["reply"]}}]}
    assert output_text(case["reply"]) == output_text(completion) == case["expect"]["value"]


def test_a_plain_one_line_reply_reads_as_the_full_reading_reads_it(monkeypatch):
    """The shortcut for plain replies (most facet outputs) never reads a text otherwise than the
    full reading: random short texts over the characters the rules react to, both ways."""
    import random

    from facetopt.facets.prompts import replies

    alphabet = "abcXYZ \t\n*_\"'`:<>{}~#-.,!?“”‘’«»：\u2028"
    rng = random.Random(11)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))) for _ in range(20000)]
    texts += [f"{w}{c} x" for w in ("Label", "**Answer**", "Output is") for c in ":："]
    texts += [case["reply"] for case in VALUES]
    shortcut = [read_value(text) for text in texts]
    monkeypatch.setattr(replies, "_MARKUP_RE", re.compile(".?"))  # matches every text: no shortcut
    assert [read_value(text) for text in texts] == shortcut
