"""The placement rules: held rows keep their split, duplicate conversations share the split of the
group's first row in seeded order, and a trace never crosses the holdout between datasets."""

import hashlib
import json
from pathlib import Path

from facetopt.facets.data.placement import (
    Candidate,
    Held,
    conversation_key,
    duplicate_groups,
    holdout_overlap,
    place_rows,
)
from facetopt.facets.data.split import assign_splits
from facetopt.facets.data.text import bucket_of

VECTORS = json.loads((Path(__file__).parent.parent / "fixtures" / "split_vectors.json").read_text())


def test_conversation_key_is_the_hash_of_the_facet_and_the_whitespace_normalised_text():
    by_hand = hashlib.sha256(b"task\nhello there friend").hexdigest()
    assert conversation_key("Task", "  hello\n\tthere   friend \n") == by_hand
    assert conversation_key("task", "hello there friend") == by_hand
    assert conversation_key("issues", "hello there friend") != by_hand
    assert conversation_key("task", "hello there, friend") != by_hand


def test_rows_without_duplicates_held_rows_or_other_datasets_keep_the_golden_split():
    for case in VECTORS["cases"]:  # the same file as golden/split_vectors.json
        items = [(r["id"], r["facet_name"], bucket_of(r["expected"])) for r in case["rows"]]
        proposed = assign_splits(items, case["seed"], case["validation_fraction"])
        candidates = [
            Candidate(
                r["id"], r["facet_name"], f"conversation of {r['id']}", None, proposed[r["id"]], case["seed"]
            )
            for r in case["rows"]
        ]
        placed = place_rows(candidates)
        assert placed.splits == {r["id"]: r["split"] for r in case["rows"]}
        assert not placed.by_duplicate and not placed.by_trace


def _order(seed: str, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def test_duplicates_take_the_split_of_the_first_row_in_seeded_order():
    seed = "src:dst:ds"
    ids = ["a:task", "b:task", "c:task"]
    first = min(ids, key=lambda i: _order(seed, i))
    proposed = {i: ("validation" if i == first else "train") for i in ids}
    text = {"a:task": "same  words", "b:task": "same words\n", "c:task": "same words"}
    placed = place_rows([Candidate(i, "task", text[i], None, proposed[i], seed) for i in ids])
    assert placed.splits == dict.fromkeys(ids, "validation")
    assert set(placed.by_duplicate) == set(ids) - {first}
    # another facet with the same text is not a duplicate
    other = place_rows(
        [Candidate("a:task", "task", "x", None, "train"), Candidate("a:issues", "issues", "x", None, "test")]
    )
    assert other.splits == {"a:task": "train", "a:issues": "test"}


def test_a_held_row_keeps_its_split_and_anchors_its_new_duplicates():
    held = [Held("old:task", "task", "the conversation", "test")]
    placed = place_rows(
        [
            Candidate("old:task", "task", "the conversation", None, "train"),
            Candidate("new:task", "task", "the   conversation", None, "validation"),
        ],
        held,
    )
    assert placed.splits == {"old:task": "test", "new:task": "test"} and placed.kept == 1
    # a ledger row deleted from the dataset carries only its key
    gone = [Held("gone:task", "task", None, "validation", key=conversation_key("task", "abc"))]
    assert place_rows([Candidate("n:task", "task", "abc", None, "train")], gone).splits == {
        "n:task": "validation"
    }


def test_a_trace_never_crosses_the_holdout_between_datasets():
    traces = {
        "t1": {"other": {"test", "train"}},  # mixed (an older dataset): test wins
        "t2": {"other": {"train"}, "third": {"validation"}},
        "t3": {"x": {"validation"}},
        "t5": {"x": {"train"}},
    }
    placed = place_rows(
        [
            Candidate("t1-row:task", "task", "one", "t1", "train"),
            Candidate("t2-row:task", "task", "two", "t2", "test"),
            Candidate("t3-row:task", "task", "three", "t3", "test"),
            Candidate("t5-row:issues", "issues", "five", "t5", "train"),  # train elsewhere is fine
            Candidate("t4-row:task", "task", "four", "t4", "test"),
        ],
        trace_splits=traces,
    )
    assert placed.splits == {
        "t1-row:task": "test",
        "t2-row:task": "train",
        "t3-row:task": "validation",
        "t5-row:issues": "train",
        "t4-row:task": "test",
    }
    assert set(placed.by_trace) == {"t1-row:task", "t2-row:task", "t3-row:task"}
    assert "test of 'other'" in placed.by_trace["t1-row:task"]


def test_overlap_and_duplicate_groups_are_counted_as_by_hand():
    traces = {"t1": {"A": {"test"}}, "t2": {"A": {"train"}}, "t3": {"A": {"test"}}}
    assert holdout_overlap([("t1", "train"), ("t2", "test"), ("t3", "test"), (None, "test")], traces) == {
        "t1": ["A"],
        "t2": ["A"],
    }
    rows = [
        ("Task", "a b", "train"),
        ("task", "a  b", "validation"),
        ("task", "c", "train"),
        ("task", "c", "train"),
        ("task", "d", "train"),
        ("issues", "a b", "train"),
        ("issues", "", "train"),
        ("issues", " ", "test"),
    ]
    assert duplicate_groups(rows) == {"task": (2, 4, 1)}


def test_inside_a_dataset_the_rows_of_a_trace_sit_on_one_side_of_the_test_split():
    seed = "s"
    ids = ["t:task", "t:issues", "t:sentiment"]
    first = min(ids, key=lambda i: _order(seed, i))
    for first_split in ("test", "validation"):
        proposed = {i: (first_split if i == first else "test") for i in ids}
        placed = place_rows([Candidate(i, i.split(":")[1], i, "t", proposed[i], seed) for i in ids])
        want = "test" if first_split == "test" else None
        if want:
            assert set(placed.splits.values()) == {"test"} and not placed.by_trace
        else:  # the first row is out of test: the others leave test for train
            assert placed.splits == {i: ("validation" if i == first else "train") for i in ids}
    # held rows decide: a held test row pulls the trace's new rows into test
    held = [Held("t:old", "old", "x", "test", root_span_id="t")]
    placed = place_rows([Candidate("t:task", "task", "y", "t", "train")], held)
    assert placed.splits == {"t:task": "test"} and "held rows" in placed.by_trace["t:task"]


def test_a_new_trace_whose_conversation_is_held_outside_test_stays_out_of_test_whole():
    # trace n is new: its issues row was proposed for test, its sentiment row repeats a conversation the
    # dataset already holds in validation. Held rows never move, so the sentiment row joins validation
    # and the trace (all its facets) stays out of test: the issues row goes to train. Before, the issues
    # row pulled the whole trace into test and the repeated conversation sat in test and validation.
    held = [Held("h:sentiment", "sentiment", "user: thanks,  great", "validation", root_span_id="h")]
    fresh = [
        Candidate("n:issues", "issues", "user: my order is late", "n", "test", "s"),
        Candidate("n:sentiment", "sentiment", "user: thanks, great", "n", "test", "s"),
    ]
    placed = place_rows(fresh, held)
    assert placed.splits == {"n:issues": "train", "n:sentiment": "validation"}
    assert "h:sentiment" in placed.by_duplicate["n:sentiment"]
    assert "out of test" in placed.by_trace["n:issues"]
    # the same conversation held in test pulls the new trace into test, all of it
    held = [Held("h:sentiment", "sentiment", "user: thanks, great", "test", root_span_id="h")]
    fresh = [
        Candidate("n:issues", "issues", "user: my order is late", "n", "validation", "s"),
        Candidate("n:sentiment", "sentiment", "user: thanks, great", "n", "train", "s"),
    ]
    assert place_rows(fresh, held).splits == {"n:issues": "test", "n:sentiment": "test"}


def test_a_repeat_whose_trace_is_test_elsewhere_and_whose_conversation_is_held_here_is_left_out():
    # n repeats the conversation of h, held in validation here, and n's trace is in test of dataset
    # 'other': validation would put a test trace in another dataset's validation, test would put one
    # conversation in two splits here. Either is a leak, so n is not written.
    held = [Held("h:issues", "issues", "user: my order is late", "validation", root_span_id="h")]
    fresh = [Candidate("n:issues", "issues", "user: my  order is late", "n", "validation", "s")]
    placed = place_rows(fresh, held, {"n": {"other": {"test"}}})
    assert list(placed.left_out) == ["n:issues"]
    assert "validation here (as held row h:issues)" in placed.left_out["n:issues"]
    assert "test of 'other'" in placed.left_out["n:issues"]
    # a row without such a conflict is written as the rules place it
    alone = [Candidate("m:issues", "issues", "user: where is my refund", "n", "validation", "s")]
    assert place_rows(alone, held, {"n": {"other": {"test"}}}).left_out == {}
