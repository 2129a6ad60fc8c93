"""The bundled sample: regenerated exactly by its generator, small, and covering every logged span shape."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from facetopt.facets.data.buckets import match_final_value
from facetopt.facets.data.parsing import parse_span, span_from_raw
from facetopt.facets.data.text import is_none_like
from facetopt.sample import SAMPLE_FILE_NAME, sample_lines
from facetopt.simulation.labeller import labeller_value
from tests.sample.generate import PROMPTS, generate_lines

SAMPLE_PATH = Path(__file__).parents[2] / "src" / "facetopt" / "sample" / SAMPLE_FILE_NAME


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    parsed = []
    for line in sample_lines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            parsed.append(value)
    return parsed


def decoded(value):
    return json.loads(value) if isinstance(value, str) and value[:1] in ("{", "[") else value


def test_committed_sample_is_what_the_generator_writes():
    assert sample_lines() == list(generate_lines()), (
        "run `python -m tests.sample.generate` and commit the file"
    )
    assert SAMPLE_PATH.stat().st_size < 2_000_000


def test_sample_has_the_broken_lines_an_export_can_have(rows: list[dict]):
    assert len(sample_lines()) - len(rows) == 3
    assert sum(1 for r in rows if "id" not in r or "root_span_id" not in r) == 2


def test_sample_covers_every_logged_shape(rows: list[dict]):
    seen: Counter[str] = Counter()
    for row in rows:
        span_input, metadata, output = row.get("input"), row.get("metadata"), row.get("output")
        for name, value in (
            ("input", span_input),
            ("metadata", metadata),
            ("span_attributes", row.get("span_attributes")),
        ):
            if isinstance(value, str) and value.startswith(("{", "[")):
                seen[f"{name} as JSON string"] += 1
        span_input, metadata = decoded(span_input), decoded(metadata)
        if isinstance(span_input, dict):
            seen.update(f"input.{key}" for key in span_input)
        if isinstance(metadata, dict):
            seen.update(f"metadata.{key}" for key in metadata)
            groups = decoded(metadata.get("suffix_messages") or metadata.get("suffixMessages"))
            if isinstance(groups, list) and len(groups) > 1:
                seen["several groups in one span"] += 1
        messages = span_input.get("messages") if isinstance(span_input, dict) else span_input
        if isinstance(messages, list) and any(isinstance(m.get("content"), list) for m in messages):
            seen["content parts"] += 1
        if isinstance(output, str) and output.startswith("<think>"):
            seen["think block"] += 1
        if isinstance(decoded(output), dict) and "choices" in decoded(output):
            seen["choices object"] += 1
        if isinstance(output, list) and output and "message" in output[0]:
            seen["list of choices"] += 1
        if "analyse:" in json.dumps(span_input):
            seen["analyse spelling"] += 1
        facets = row.get("facets")
        if isinstance(facets, dict):
            seen.update(f"facet key {key}" for key in facets)
    for shape in [
        "input as JSON string",
        "metadata as JSON string",
        "span_attributes as JSON string",
        "input.messages",
        "input.input",
        "input.suffix_messages",
        "input.suffixMessages",
        "input.preprocessed_text",
        "input.preprocessedText",
        "input.user_data",
        "input.userData",
        "metadata.suffix_messages",
        "metadata.suffixMessages",
        "metadata.facet_name",
        "metadata.facet",
        "metadata.sampled_facet_name",
        "several groups in one span",
        "content parts",
        "think block",
        "choices object",
        "list of choices",
        "analyse spelling",
        "facet key Task",
        "facet key task",
        "facet key TASK",
        "facet key SENTIMENT",
        "facet key Issues:",
    ]:
        assert seen[shape] > 0, shape


def test_sample_parses_into_three_facets_with_both_buckets(rows: list[dict]):
    calls = []
    for row in rows:
        attributes, metadata = decoded(row.get("span_attributes")), decoded(row.get("metadata"))
        is_facet_llm = isinstance(attributes, dict) and attributes.get("type") == "llm"
        if not (is_facet_llm and isinstance(metadata, dict) and metadata.get("model") == "brain-facet-1"):
            continue
        span = span_from_raw(row)
        if span is not None:
            calls += parse_span(span)
    names = Counter(call.facet_name.lower() for call in calls)
    assert set(names) == {"task", "sentiment", "issues"} and min(names.values()) > 100
    issues = Counter(is_none_like(c.production_output) for c in calls if c.facet_name.lower() == "issues")
    assert issues[True] > 40 and issues[False] > 40
    labels = Counter(c.production_output.split(" ")[0] for c in calls if c.facet_name.lower() == "sentiment")
    assert {"Negative", "Neutral", "Positive", "Mixed"} <= set(labels)
    for facet in ("task", "sentiment"):  # sessions with no request: a negative bucket for every facet
        nones = Counter(is_none_like(c.production_output) for c in calls if c.facet_name.lower() == facet)
        assert nones[True] > 10 and nones[False] > 100, (facet, nones)
    traces = {c.root_span_id: c.preprocessed_text for c in calls}
    asking = sum(text.rstrip().endswith("?") for text in traces.values())
    assert 0.4 < asking / len(traces) < 0.9
    without_finals = {r["root_span_id"] for r in rows if "root_span_id" in r} - {
        r["root_span_id"] for r in rows if r.get("facets")
    }
    assert len(without_finals) > 10


def test_sample_prompts_leave_the_data_boundary_for_the_demo_to_add():
    for prompt in PROMPTS.values():
        assert "not a request" not in prompt.lower() and "is data" not in prompt.lower()


def test_sessions_without_a_request_say_none_for_task_and_sentiment(rows: list[dict]):
    """The sample's no-request sessions (a notification, "hi", "test", "ping", an empty message) are the
    negatives of task and sentiment: the labeller says NONE and so, mostly, do production and the finals."""
    traces: dict[str, str] = {}
    for row in rows:
        attributes, metadata = decoded(row.get("span_attributes")), decoded(row.get("metadata"))
        is_facet_llm = isinstance(attributes, dict) and attributes.get("type") == "llm"
        if not (is_facet_llm and isinstance(metadata, dict) and metadata["model"].startswith("brain-facet")):
            continue
        span = span_from_raw(row)
        if span is not None:
            traces.update((call.root_span_id, call.preprocessed_text) for call in parse_span(span))
    finals = {r["root_span_id"]: r["facets"] for r in rows if isinstance(r.get("facets"), dict)}
    silent = {root for root, text in traces.items() if labeller_value(text, PROMPTS["task"]) == "NONE"}
    assert 30 <= len(silent) <= 60, len(silent)
    assert all(labeller_value(traces[root], PROMPTS["sentiment"]) == "NONE" for root in silent)
    for facet in ("Task", "Sentiment"):
        values = [match_final_value(finals[root], facet) for root in silent if root in finals]
        assert sum(v == "no_match" for v in values) > 0.8 * len(values) > 20, facet
    talking = set(traces) - silent
    assert all(labeller_value(traces[root], PROMPTS["sentiment"]) != "NONE" for root in talking)
