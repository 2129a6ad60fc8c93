"""How often the demo's data-boundary edit can reach KEEP on the issues facet, by validation size.

A maintainers' tool (`.venv/bin/python -m tests.sample.demo_power`), not a test: it answers "how big
must the bundled sample be for the demo's edit to be kept?" before anyone grows it.

It draws conversations with the sample generator (`build_conversation`), labels each with the
simulated labeller as `dataset create` asks (planted mistakes included), runs the simulated facet
model on it with the captured issues prompt and with the demo's edit (the prompt plus
`BOUNDARY_SENTENCE`), and keeps one row per distinct conversation (compare folds duplicates). It then
draws validation sets of `n` expected-positive and `n` expected-negative rows from that population
and puts their paired tables through compare's production rule (`guard_simulation.decide_tables`,
target `balanced`; Factuality is left out: the edit raises it by a wide margin).

It also prints where the recall guard's losses come from, which is what decides the answer: rows
labelled positive by a planted labeller mistake on which the baseline answered the user (an answer
is a value, so it "matched" the wrong label) and the edit now returns NONE, and noise flips on rows
the baseline answered (an answer is never flipped).
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass

import facetopt.simulation.facet_model as facet_model_module
import facetopt.simulation.labeller as labeller_module
from facetopt.facets.data.text import is_none_like
from facetopt.services.demo.loop import BOUNDARY_SENTENCE
from facetopt.simulation.facet_model import answers_the_user, facet_model_value
from facetopt.simulation.labeller import is_planted_mistake, labeller_reply
from tests.facets.guard_simulation import Table, decide_tables
from tests.sample.generate import ISSUES_PROMPT, build_conversation

BASELINE = ISSUES_PROMPT
CANDIDATE = f"{ISSUES_PROMPT}\n\n{BOUNDARY_SENTENCE}"
SIZES = (100, 200, 300, 400)


@dataclass(frozen=True)
class Row:
    expected: bool  # the label has a value
    baseline_right: bool
    candidate_right: bool
    mistake: bool  # the label is a planted labeller mistake
    answered: bool  # the baseline answered the user


def population(conversations: int = 12000, seed: int = 11) -> list[Row]:
    """One row per distinct conversation of `conversations` generated ones."""
    rng = random.Random(seed)
    rows: dict[str, Row] = {}
    for _ in range(conversations):
        trace = build_conversation(rng)["text"]
        if trace in rows:
            continue
        expected = not is_none_like(labeller_reply(trace, BASELINE))
        rows[trace] = Row(
            expected=expected,
            baseline_right=(not is_none_like(facet_model_value(trace, BASELINE))) == expected,
            candidate_right=(not is_none_like(facet_model_value(trace, CANDIDATE))) == expected,
            mistake=is_planted_mistake(trace, BASELINE),
            answered=answers_the_user(trace, BASELINE),
        )
    return list(rows.values())


def table(rows: list[Row]) -> Table:
    cells = [0, 0, 0, 0]
    for r in rows:
        b, c = r.baseline_right, r.candidate_right
        cells[0 if b and c else 1 if b else 2 if c else 3] += 1
    return cells[0], cells[1], cells[2], cells[3]


def p_keep(rows: list[Row], n: int, draws: int = 400, seed: int = 0) -> float:
    rng = random.Random(f"{seed}-{n}")
    positives = [r for r in rows if r.expected]
    negatives = [r for r in rows if not r.expected]
    keeps = 0
    for _ in range(draws):
        pos = table(rng.sample(positives, n))
        neg = table(rng.sample(negatives, n))
        keeps += decide_tables("balanced", pos, neg).verdict == "KEEP"
    return keeps / draws


def report(rows: list[Row]) -> list[str]:
    positives = [r for r in rows if r.expected]
    negatives = [r for r in rows if not r.expected]
    lost = [r for r in positives if r.baseline_right and not r.candidate_right]
    gained = [r for r in positives if r.candidate_right and not r.baseline_right]
    spec = table(negatives)
    lines = [
        f"distinct conversations: {len(rows)} ({len(positives)} labelled positive, {len(negatives)} negative)",
        f"recall guard (positives): lost {len(lost)}, gained {len(gained)}, "
        f"true change {(len(gained) - len(lost)) / len(positives):+.3f}, "
        f"rows moving {(len(gained) + len(lost)) / len(positives):.3f}",
        f"  lost on a planted label mistake the baseline's answer matched: "
        f"{sum(r.mistake and r.answered for r in lost)}",
        f"  lost to a noise flip on a row the baseline answered: {sum(r.answered and not r.mistake for r in lost)}",
        f"  lost to a noise flip otherwise: {sum(not r.answered for r in lost)}",
        f"specificity (negatives): true change {(spec[2] - spec[1]) / len(negatives):+.3f}",
        "P(KEEP), n positive + n negative validation rows: "
        + ", ".join(f"n={n}: {p_keep(rows, n):.2f}" for n in SIZES),
    ]
    return lines


def main(argv: list[str]) -> None:
    """`--noise` (percent) and `--mistake-every` (0: no planted mistakes) override the simulation's
    NOISE_RATE and MISTAKE_EVERY for this process only, to see what each costs."""
    parser = argparse.ArgumentParser(prog="python -m tests.sample.demo_power")
    parser.add_argument("--noise", type=int, default=facet_model_module.NOISE_RATE)
    parser.add_argument("--mistake-every", type=int, default=labeller_module.MISTAKE_EVERY)
    args = parser.parse_args(argv)
    facet_model_module.NOISE_RATE = args.noise
    labeller_module.MISTAKE_EVERY = args.mistake_every or 10**12
    head = f"NOISE_RATE {args.noise}%, planted label mistakes 1 in {args.mistake_every or 'never'}"
    sys.stdout.write("\n".join([head, *report(population())]) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
