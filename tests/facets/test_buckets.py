import json

import pytest

from facetopt.domain.spans import FacetCall
from facetopt.facets.data.buckets import assign_weak_buckets, match_final_value, newest_final_facets


def make_call(root, facet, output="something", row_id=None):
    return FacetCall(
        source_row_id=row_id or f"{root}-{facet}",
        root_span_id=root,
        facet_name=facet,
        messages=[],
        template_messages=[],
        suffix_messages=[],
        prompt_text="p",
        preprocessed_text="t",
        production_output=output,
    )


@pytest.mark.parametrize(
    ("facets", "name", "expected"),
    [
        ({"task": "exact", "Task": "cased"}, "task", "exact"),
        ({"Task": "User wants a refund"}, "task", "User wants a refund"),
        ({"ISSUES": "no_match"}, "issues", "no_match"),
        ({"Competitor Mentions": "Langfuse"}, "competitor-mentions", "Langfuse"),
        ({"competitor_mentions": "Langfuse"}, "Competitor-Mentions", "Langfuse"),
        ({"Task": "x"}, "sentiment", None),
        ({"Task": None}, "task", None),
        ({"Task": ["a", "b"]}, "task", '["a", "b"]'),
        ({}, "task", None),
        (None, "task", None),
    ],
)
def test_match_final_value(facets, name, expected):
    assert match_final_value(facets, name) == expected


def test_newest_final_facets_keeps_the_newest_row_per_trace():
    rows = [
        {"root_span_id": "a", "created": "2025-01-01T00:00:00Z", "facets": {"Task": "old"}},
        {"root_span_id": "a", "created": "2025-01-03T00:00:00Z", "facets": json.dumps({"Task": "new"})},
        {"root_span_id": "a", "created": "2025-01-02T00:00:00+00:00", "facets": {"Task": "middle"}},
        {"root_span_id": "b", "created": None, "facets": {"Task": "only"}},
        {"root_span_id": "c", "created": "2025-01-01T00:00:00Z", "facets": None},
        {"root_span_id": None, "created": "2025-01-01T00:00:00Z", "facets": {"Task": "orphan"}},
    ]
    assert newest_final_facets(rows) == {"a": {"Task": "new"}, "b": {"Task": "only"}}


def test_newest_final_facets_first_row_wins_a_tie():
    rows = [
        {"root_span_id": "a", "created": "2025-01-01 00:00:00", "facets": {"Task": "first"}},
        {"root_span_id": "a", "created": "2025-01-01T00:00:00Z", "facets": {"Task": "second"}},
    ]
    assert newest_final_facets(rows) == {"a": {"Task": "first"}}


def test_assign_weak_buckets_prefers_final_facets_and_counts_fallbacks():
    calls = [
        make_call("r1", "issues", output="The bot lied"),  # final says no_match: negative wins
        make_call("r2", "task", output="None"),  # final says a task: positive wins
        make_call("r3", "task", output="None."),  # no final row: production output decides
        make_call("r4", "task", output="User wants a CSV"),  # final row without this facet
    ]
    final = {
        "r1": {"Issues": "no_match"},
        "r2": {"TASK": "User wants a refund"},
        "r4": {"Sentiment": "Positive"},
    }
    counts = assign_weak_buckets(calls, final)
    assert counts == {"final_facet": 2, "production_output": 2}
    assert [(c.weak_bucket, c.weak_bucket_source, c.final_facet_value) for c in calls] == [
        ("negative", "final_facet", "no_match"),
        ("positive", "final_facet", "User wants a refund"),
        ("negative", "production_output", None),
        ("positive", "production_output", None),
    ]


def test_assign_weak_buckets_uses_the_facet_pattern():
    calls = [
        make_call("r1", "competitor", output="No competitor"),
        make_call("r2", "competitor", output="None"),
    ]
    assign_weak_buckets(calls, {}, patterns={"Competitor": r"^no competitor$"})
    assert [c.weak_bucket for c in calls] == ["negative", "positive"]
