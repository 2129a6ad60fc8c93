import pytest

from facetopt.facets.data.naming import facet_name_for

ISSUES_PROMPT = "List problems: no response from the assistant, leaked reasoning, wrong answers."
SENTIMENT_PROMPT = "Classify the user sentiment as Negative, Neutral, Positive or Mixed."
TASK_PROMPT = "Describe what the user wants to do."


@pytest.mark.parametrize(
    ("prompt", "metadata", "explicit", "index", "count", "expected"),
    [
        # 1. an explicit name beats everything, lower-cased
        (SENTIMENT_PROMPT, {"facet_name": "Mood"}, "My Facet", 0, 1, "my facet"),
        # 2. metadata keys in order
        (SENTIMENT_PROMPT, {"facet_name": "Task"}, None, 0, 1, "task"),
        (SENTIMENT_PROMPT, {"facet": "Issues"}, None, 0, 1, "issues"),
        (SENTIMENT_PROMPT, {"sampled_facet_name": "Competitor"}, None, 0, 1, "competitor"),
        (SENTIMENT_PROMPT, {"facet_name": "  ", "facet": "Mood"}, None, 0, 1, "mood"),
        # 3. the quoted phrase in the prompt
        ('You are extracting a "Competitor Mentions" facet.', {}, None, 0, 1, "competitor-mentions"),
        ("You are extracting an “Upsell” facet from a trace", {}, None, 0, 1, "upsell"),
        (
            'Extracting a "Product" facet. Sentiment: negative, neutral, positive, mixed',
            {},
            None,
            0,
            1,
            "product",
        ),
        # 4. keyword guesses
        (ISSUES_PROMPT, {}, None, 0, 1, "issues"),
        (SENTIMENT_PROMPT, {}, None, 0, 1, "sentiment"),
        (TASK_PROMPT, {}, None, 0, 1, "task"),
        ("Summarise the overall request or goal of the conversation.", {}, None, 0, 1, "task"),
        ("mentions no response only", {}, None, 0, 1, "facet"),
        # 5. defaults, numbered from 1 when a span has several groups
        ("Extract something.", {}, None, 0, 1, "facet"),
        ("Extract something.", {}, None, 1, 3, "facet-2"),
        ("Extract something.", None, None, 0, 2, "facet-1"),
    ],
)
def test_facet_name_rules(prompt, metadata, explicit, index, count, expected):
    assert facet_name_for(prompt, metadata, explicit, index, count) == expected


def test_metadata_list_of_names_is_read_per_group():
    metadata = {"facet_name": ["Task", "Sentiment"]}
    assert facet_name_for("x", metadata, None, 1, 2) == "sentiment"
