"""Duplicate conversations in compare: which rows are one observation, and which pair is kept."""

from __future__ import annotations

from facetopt.domain.experiments import EvalRow
from facetopt.facets.data.duplicates import fold_duplicate_pairs
from facetopt.facets.data.placement import conversation_key


def row(row_id: str, text: str | None, facet: str = "issues", match: float = 1.0) -> EvalRow:
    data = {} if text is None else {"preprocessed_text": text}
    return EvalRow(id=row_id, facet_name=facet, input=data, scores={"binary_decision_match": match})


def test_whitespace_alone_does_not_make_two_conversations():
    # the key the split groups by is the key compare folds by
    assert conversation_key("issues", "user:  hi\n\tassistant: hello ") == conversation_key(
        "Issues", "user: hi assistant: hello"
    )
    assert conversation_key("issues", "user: hi") != conversation_key("issues", "user: hi!")
    assert conversation_key("issues", "user: hi") != conversation_key("task", "user: hi")


def test_a_group_keeps_its_first_row_by_id_on_both_sides():
    # b and a are the same conversation (spacing aside); c is another; the same text in another facet
    # and rows without text stand alone
    baseline = [
        row("b", "user: refund  please"),
        row("a", "user: refund please", match=0.0),
        row("c", "user: where is my parcel"),
        row("d", "user: refund please", facet="task"),
        row("e", None),
        row("f", None),
    ]
    candidate = [r.model_copy(update={"scores": {"binary_decision_match": 1.0}}) for r in baseline]
    left, right, folded = fold_duplicate_pairs(baseline, candidate)
    assert [r.id for r in left] == ["a", "c", "d", "e", "f"] == [r.id for r in right]
    assert left[0].scores["binary_decision_match"] == 0.0  # a's own baseline result, paired with a's
    assert folded == {"issues": 1}
