"""The optimiser keeps its best: the winner is the best train score over all rounds, and only a
candidate scored on train is called a finalist (the case of issue 24: a round-2 candidate at 0.8625
on train against the baseline's 0.7875, then round-3 finalists the budget left unscored)."""

from __future__ import annotations

from facetopt.services.optimize.model import Candidate
from facetopt.services.optimize.run import choose_winner


def candidate(cid: str, minibatch: float, delta: float, train: float | None = None) -> Candidate:
    round_, slot = int(cid[1]), int(cid[3])
    return Candidate(
        candidate_id=cid, round=round_, slot=slot, parent="baseline", prompt_sha256=cid * 8,
        status="screened", minibatch_score=minibatch, minibatch_delta=delta, train_score=train,
    )  # fmt: skip


def test_an_earlier_train_scored_candidate_wins_when_later_finalists_cannot_be_scored():
    earlier = candidate("r2c1", 0.80, 0.05, train=0.8625)  # scored on train as round 3's parent
    late = [candidate("r3c1", 0.90, 0.15), candidate("r3c2", 0.85, 0.10)]
    asked: list[str] = []

    def unaffordable(c: Candidate) -> float | None:
        asked.append(c.candidate_id)
        return None  # the budget held the train scoring back

    winner = choose_winner([earlier, *late], 0.7875, 2, unaffordable)
    assert winner is earlier and earlier.status == "winner"
    assert asked == ["r3c1", "r3c2"]  # the best two on the minibatch were tried
    assert [c.status for c in late] == ["screened", "screened"]  # never scored: not finalists


def test_the_best_train_score_wins_not_the_best_minibatch_score():
    pool = [candidate("r1c1", 0.95, 0.20), candidate("r1c2", 0.85, 0.10), candidate("r2c1", 0.80, 0.05, 0.81)]
    train = {"r1c1": 0.79, "r1c2": 0.83}
    winner = choose_winner(pool, 0.78, 2, lambda c: train[c.candidate_id])
    assert winner is not None and winner.candidate_id == "r1c2"
    assert [c.status for c in pool] == ["finalist", "winner", "finalist"]


def test_no_winner_when_nothing_beats_the_baseline_on_train():
    pool = [candidate("r1c1", 0.95, 0.20), candidate("r1c2", 0.70, -0.05)]
    assert choose_winner(pool, 0.80, 2, lambda c: 0.80) is None
    assert [c.status for c in pool] == ["finalist", "screened"]  # scored, equal: not better
