import pytest

from facetopt.errors import InputError
from facetopt.facets.data.text import (
    DATA_MARKERS,
    bucket_of,
    content_text,
    decode_jsonish,
    is_none_like,
    normalise_value,
    pattern_for,
    strip_think,
    text_after_marker,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]", [1, 2]),
        ("{not json", "{not json"),
        ("plain text", "plain text"),
        ('"quoted"', '"quoted"'),
        (42, 42),
        (None, None),
        ({"already": "decoded"}, {"already": "decoded"}),
    ],
)
def test_decode_jsonish(value, expected):
    assert decode_jsonish(value) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hello", "hello"),
        (None, ""),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a\nb"),
        (["a", {"type": "text", "text": "b"}], "a\nb"),
        ([{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "only"}], "only"),
        ('[{"type": "text", "text": "from json"}]', "from json"),
        ({"type": "text", "text": "single part"}, "single part"),
    ],
)
def test_content_text(content, expected):
    assert content_text(content) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>reasoning</think>\nUser wants a refund", "User wants a refund"),
        ("<THINK>a</THINK> x <think>b\nc</think> y", "x  y"),
        ("<think>never closed, model ran out of tokens", ""),
        ("answer first <think>unfinished", "answer first"),
        ("reasoning without the opening tag</think>\nNone", "None"),
        ("  no tags  ", "no tags"),
        (None, ""),
    ],
)
def test_strip_think(text, expected):
    assert strip_think(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "None",
        "none",
        " NONE ",
        "None.",
        "None - nothing wrong",
        "none: the user was happy",
        "no_match",
        "No-Match",
        "no match",
        "No match found",
        "null",
        "skipped",
        "Skipped: too short",
        "N/A",
        "na",
        "NA",
        "not applicable",
        "not_applicable",
        "Not-Applicable",
    ],
)
def test_none_like_values_are_negative(value):
    assert is_none_like(value)
    assert bucket_of(value) == "negative"


@pytest.mark.parametrize(
    "value",
    [
        "Nonetheless the user was angry",
        "User wants a refund",
        "Langfuse",
        "no matches were shown to the user",
        "nullable field confusion",
        "N/A.",  # only the listed exact values or a leading none/no match/skipped word count
        "not applicable here",
        "Negative - user is angry",
        "Nothing",
    ],
)
def test_other_values_are_positive(value):
    assert not is_none_like(value)
    assert bucket_of(value) == "positive"


def test_no_match_pattern_overrides_the_default_rule():
    pattern = r"^(no competitor|none)$"
    assert is_none_like("No competitor", pattern)
    assert is_none_like("  none  ", pattern)
    # the default rule no longer decides: "None." and "N/A" are positives under this pattern
    assert not is_none_like("None.", pattern)
    assert not is_none_like("N/A", pattern)
    assert bucket_of("Langfuse", pattern) == "positive"
    # an empty value is never a positive
    assert is_none_like("", pattern)
    assert is_none_like(None, pattern)


def test_invalid_pattern_is_a_user_error_with_hint():
    with pytest.raises(InputError) as info:
        is_none_like("x", "([unclosed")
    assert info.value.hint


def test_normalise_value():
    assert normalise_value("  No_Match-Here ") == "no match here"
    assert normalise_value(None) == ""


def test_data_markers_both_spellings():
    assert DATA_MARKERS == ("Here is the data to analyze:", "Here is the data to analyse:")
    assert text_after_marker("Intro.\nHere is the data to analyse:\n\n trace ") == "trace"
    assert text_after_marker("HERE IS THE DATA TO ANALYZE: x") == "x"
    assert text_after_marker("no marker") is None


def test_pattern_for_matches_facet_names_case_insensitively():
    patterns = {"Competitor": "^none$"}
    assert pattern_for(patterns, "competitor") == "^none$"
    assert pattern_for(patterns, "task") is None
    assert pattern_for(None, "task") is None
