"""The verdict rule's error rates, by a seeded simulation of thousands of paired tables through the
production path (tests/facets/guard_simulation.py says how the tables are drawn).

A KEEP must be rare when nothing truly changed (at most 2.5%: the one-sided error of a 95% interval)
and when a guard truly falls by more than the margin while the target truly gains (at most 5%), at
every size a user meets. The power check keeps the bounds from passing by a rule that never keeps.
"""

from __future__ import annotations

import pytest

from facetopt.domain.experiments import EvalRow
from facetopt.facets.decide.verdict import compare_rows
from tests.facets.guard_simulation import SIZES, Truth, draw_table, p_keep

TABLES = 2500
RECALL, SPECIFICITY = 0.70, 0.80


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("target", ["recall", "precision", "balanced"])
@pytest.mark.parametrize("flips", [0.02, 0.10])
def test_no_true_change_is_kept_at_most_2_5_percent(rows: int, target: str, flips: float) -> None:
    share = p_keep(target, rows, Truth(RECALL, flips, 0.0), Truth(SPECIFICITY, flips, 0.0), TABLES)
    assert share <= 0.025


# the target gains 0.15 (precision: specificity; recall: recall; balanced: recall +0.25, so the
# decision match gains 0.095) while the guard falls by 0.06 or 0.10, past the 0.05 margin
FALLS = {
    "recall": lambda fall: (Truth(RECALL, 0.05, 0.15), Truth(SPECIFICITY, 0.05 + fall, -fall)),
    "precision": lambda fall: (Truth(RECALL, 0.05 + fall, -fall), Truth(SPECIFICITY - 0.10, 0.05, 0.15)),
    "balanced": lambda fall: (Truth(RECALL - 0.10, 0.02, 0.25), Truth(SPECIFICITY, 0.05 + fall, -fall)),
}


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("target", sorted(FALLS))
@pytest.mark.parametrize("fall", [0.06, 0.10])
def test_a_guard_falling_past_the_margin_is_kept_at_most_5_percent(
    rows: int, target: str, fall: float
) -> None:
    positive, negative = FALLS[target](fall)
    assert p_keep(target, rows, positive, negative, TABLES) <= 0.05


def test_the_rule_still_keeps_a_real_gain_on_enough_rows() -> None:
    # recall +0.15, specificity unchanged, 1000 rows: without this the bounds above could pass by a
    # rule that never keeps anything
    share = p_keep("recall", 1000, Truth(RECALL, 0.05, 0.15), Truth(SPECIFICITY, 0.05, 0.0), 1000)
    assert share > 0.85


def test_the_simulated_path_is_the_one_compare_takes_on_rows() -> None:
    """One drawn table turned into rows gives compare_rows the verdict the simulation counts."""
    import random

    from tests.facets.guard_simulation import decide_tables

    rng = random.Random(7)
    pos = draw_table(rng, 200, Truth(RECALL, 0.05, 0.15))
    neg = draw_table(rng, 200, Truth(SPECIFICITY, 0.05, 0.0))
    baseline, candidate = [], []
    for label, table in (("positive_recall", pos), ("negative_specificity", neg)):
        outcomes = [(1.0, 1.0)] * table[0] + [(1.0, 0.0)] * table[1] + [(0.0, 1.0)] * table[2]
        outcomes += [(0.0, 0.0)] * table[3]
        for index, (before, after) in enumerate(outcomes):
            row_id = f"{label}-{index}"
            for side, value in ((baseline, before), (candidate, after)):
                scores = {"binary_decision_match": value, label: value}
                side.append(EvalRow(id=row_id, facet_name="task", scores=scores))
    compared = compare_rows(baseline, candidate, "task", "recall", no_guard=["Factuality"])
    simulated = decide_tables("recall", pos, neg)
    assert (compared.verdict, compared.rule) == (simulated.verdict, simulated.rule)
    # and the counts the simulation drew are the ones compare found on the rows
    recall = next(d for d in compared.deltas if d.metric == "positive_recall")
    assert (recall.n, recall.worse, recall.better) == (200, pos[1], pos[2])
