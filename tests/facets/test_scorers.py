import pytest

from facetopt.facets.decide.scorers import (
    binary_decision_match,
    negative_specificity,
    positive_recall,
    sentiment_label,
    sentiment_label_correct,
)


@pytest.mark.parametrize(
    ("output", "expected", "match", "recall", "specificity"),
    [
        ("User wants a refund", "User wants a refund please", 1.0, 1.0, None),  # both positive
        ("None", "User wants a refund", 0.0, 0.0, None),  # false negative
        ("", "User wants a refund", 0.0, 0.0, None),  # empty output is none-like
        (None, "User wants a refund", 0.0, 0.0, None),
        ("The bot lied", "None - nothing wrong", 0.0, None, 0.0),  # false positive
        ("no_match", "None.", 1.0, None, 1.0),  # both negative, different spellings
        ("N/A", "skipped", 1.0, None, 1.0),
        ("<think>the user is calm</think>None", "none", 1.0, None, 1.0),
        ("Nonetheless the user left", "None", 0.0, None, 0.0),  # "Nonetheless" is positive
    ],
)
def test_binary_scores(output, expected, match, recall, specificity):
    assert binary_decision_match(output, expected) == match
    assert positive_recall(output, expected) == recall
    assert negative_specificity(output, expected) == specificity


def test_scores_follow_the_facet_pattern():
    pattern = r"^no competitor"
    assert binary_decision_match("No competitor mentioned", "no competitor", pattern) == 1.0
    # under this pattern "None" is a positive value
    assert positive_recall("None", "Langfuse", pattern) == 1.0
    assert negative_specificity("Langfuse", "No competitor", pattern) == 0.0


def test_scores_without_expected_do_not_apply():
    assert binary_decision_match("x", None) is None
    assert positive_recall("x", None) is None
    assert negative_specificity("x", None) is None


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Negative - user is angry", "Negative"),
        ("neutral", "Neutral"),
        ("POSITIVE: thanks were given", "Positive"),
        ("Mixed.", "Mixed"),
        ("- Positive", "Positive"),
        ("1. Negative", "Negative"),
        ('"Neutral"', "Neutral"),
        ("Sentiment: Mixed", "Mixed"),
        ("label: negative", "Negative"),
        ('- "Sentiment: **Positive**"', "Positive"),
        ("**Sentiment:** Negative", "Negative"),
        ("<think>hmm</think>Neutral", "Neutral"),
        ("Negatively charged", None),
        ("The user is positive", None),
        ("None", None),
        ("", None),
        (None, None),
    ],
)
def test_sentiment_label(text, label):
    assert sentiment_label(text) == label


@pytest.mark.parametrize(
    ("facet", "output", "expected", "score"),
    [
        ("sentiment", "Negative", "Negative - user is angry", 1.0),
        ("Sentiment", "Sentiment: negative", "Negative", 1.0),
        ("sentiment", "Positive", "Negative - user is angry", 0.0),
        ("sentiment", "I cannot tell", "Mixed", 0.0),
        ("sentiment", None, "Mixed", 0.0),
        ("sentiment", "Negative", "None", None),  # expected has no label
        ("task", "Negative", "Negative", None),  # not a sentiment row
    ],
)
def test_sentiment_label_correct(facet, output, expected, score):
    assert sentiment_label_correct(facet, output, expected) == score
