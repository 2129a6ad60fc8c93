"""Where a row may go once the seeded split has spoken: rows a dataset (or facetopt's ledger)
already holds keep their split, duplicate conversations of one facet share one split, and a trace
never sits in test of one dataset of a project and in train or validation of another.

`conversation_key(facet, text)` is the duplicate grouping key, also stored on each row's metadata
under `CONVERSATION_KEY` (compare folds duplicate rows with the same key)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from facetopt.facets.data.split import TEST, TRAIN, VALIDATION, split_order_key

CONVERSATION_KEY = "conversation_key"


def conversation_key(facet_name: str, text: str) -> str:
    """sha256 of the facet name (case-insensitive) and the preprocessed text with every run of
    whitespace made one space and the ends stripped: equal for the same conversation of one facet."""
    normalised = " ".join(str(text or "").split())
    return hashlib.sha256(f"{facet_name.strip().casefold()}\n{normalised}".encode()).hexdigest()


@dataclass
class Candidate:
    """A row about to be written: its proposed split, and what placement needs to know."""

    row_id: str
    facet_name: str
    text: str
    root_span_id: str | None
    split: str
    seed: str = ""  # the seed whose order decides which duplicate comes first


@dataclass
class Held:
    """A row the target dataset already holds (or held: facetopt's ledger remembers it)."""

    row_id: str
    facet_name: str
    text: str | None
    split: str
    seed: str = ""
    key: str | None = None  # a stored conversation key, when the text is not at hand
    root_span_id: str | None = None


@dataclass
class Placement:
    splits: dict[str, str] = field(default_factory=dict)
    kept: int = 0  # rows already held: their split was kept
    by_duplicate: dict[str, str] = field(default_factory=dict)  # row id -> why
    by_trace: dict[str, str] = field(default_factory=dict)  # row id -> why
    # new rows no split can take without a leak (their conversation is held in one split here and
    # their trace sits in another across datasets): not written; row id -> why
    left_out: dict[str, str] = field(default_factory=dict)


def _order(seed: str, row_id: str) -> tuple[str, str]:
    return split_order_key(seed, row_id), row_id


def place_rows(
    candidates: Iterable[Candidate],
    held: Iterable[Held] = (),
    trace_splits: Mapping[str, Mapping[str, Collection[str]]] | None = None,
) -> Placement:
    """Final splits of the candidates.

    1. A candidate the target already holds keeps the held split.
    2. Candidates of one facet with the same conversation take the split of the group's held row
       (the first in seeded order when several), else of the group's first candidate in seeded order.
    3. Inside the dataset, the new rows of one trace are all test or all not test (as its held rows
       are, else as its first new row in seeded order was placed; a row kept out of test is train).
    4. A new row whose trace (root span id) is in test of another dataset goes to test; one whose
       trace is in train or validation of another dataset and would be test goes to that split
       (train when both). `trace_splits` maps root span id -> {other dataset: its splits there}.
    Without held rows, duplicates and other datasets, every candidate keeps its proposed split.
    """
    result = Placement()
    held_by_id = {h.row_id: h for h in held}
    fresh: list[Candidate] = []
    for c in candidates:
        if c.row_id in held_by_id:
            result.splits[c.row_id] = held_by_id[c.row_id].split
            result.kept += 1
        else:
            result.splits[c.row_id] = c.split
            fresh.append(c)

    groups: dict[str, list[Candidate]] = defaultdict(list)
    for c in fresh:
        if str(c.text or "").strip():
            groups[conversation_key(c.facet_name, c.text)].append(c)
    anchors: dict[str, tuple[tuple[str, str], Held]] = {}
    for h in held_by_id.values():
        key = h.key or (conversation_key(h.facet_name, h.text) if h.text is not None else None)
        if key is None or key not in groups:
            continue
        order = _order(h.seed, h.row_id)
        if key not in anchors or order < anchors[key][0]:
            anchors[key] = (order, h)
    group_split: dict[str, tuple[str, str | None]] = {}
    for key, members in groups.items():
        if key in anchors:
            anchor = anchors[key][1]
            split, why = anchor.split, f"same conversation as {anchor.row_id}, held in {anchor.split}"
        elif len(members) > 1:
            first = min(members, key=lambda c: _order(c.seed, c.row_id))
            split, why = first.split, f"same conversation as {first.row_id}, placed in {first.split}"
        else:
            continue
        group_split[key] = (split, anchors[key][1].row_id if key in anchors else None)
        for c in members:
            if result.splits[c.row_id] != split:
                result.splits[c.row_id] = split
                result.by_duplicate[c.row_id] = why

    _one_holdout_side_per_trace(fresh, held_by_id.values(), groups, anchors, result)
    for c in fresh:
        elsewhere = (trace_splits or {}).get(c.root_span_id or "") or {}
        if not elsewhere:
            continue
        split = result.splits[c.row_id]
        tested = sorted(d for d, splits in elsewhere.items() if TEST in splits)
        used = {s for splits in elsewhere.values() for s in splits if s in (TRAIN, VALIDATION)}
        if tested and split != TEST:
            result.splits[c.row_id] = TEST
            result.by_trace[c.row_id] = f"trace {c.root_span_id} is in test of {tested[0]!r}"
        elif used and split == TEST:
            moved = TRAIN if TRAIN in used else VALIDATION
            where = sorted(d for d, splits in elsewhere.items() if moved in splits)[0]
            result.splits[c.row_id] = moved
            result.by_trace[c.row_id] = f"trace {c.root_span_id} is in {moved} of {where!r}"
    _leave_out_conflicts(groups, group_split, result)
    return result


def _leave_out_conflicts(
    groups: Mapping[str, list[Candidate]],
    group_split: Mapping[str, tuple[str, str | None]],
    result: Placement,
) -> None:
    """A repeated conversation that the trace rule across datasets pulled out of its group's split
    (its trace is in test of another dataset while the conversation sits outside test here, or the
    reverse) would be a leak in either split: the row is left out, never written."""
    for key, (split, anchor) in group_split.items():
        for c in groups[key]:
            if result.splits[c.row_id] != split:
                with_whom = f"held row {anchor}" if anchor else "the rows it repeats"
                result.left_out[c.row_id] = (
                    f"its conversation is in {split} here (as {with_whom}) and "
                    f"{result.by_trace.get(c.row_id, 'the trace rule puts it in ' + result.splits[c.row_id])}"
                )


def _one_holdout_side_per_trace(
    fresh: list[Candidate],
    held: Iterable[Held],
    groups: Mapping[str, list[Candidate]],
    anchors: Mapping[str, tuple[tuple[str, str], Held]],
    result: Placement,
) -> None:
    """Inside the dataset, the rows of one trace (its facets) are all test or all not test, and so are
    the rows of one conversation: rows linked by a trace or a conversation form one unit. A unit is
    out of test when a held row it is tied to (of one of its traces, or holding one of its
    conversations) is out of test, since held rows never move; else in test when such a row is in
    test; else as the seeded split put its first row. A row kept out of test goes to train."""
    parent = {c.row_id: c.row_id for c in fresh}

    def find(row_id: str) -> str:
        while parent[row_id] != row_id:
            parent[row_id] = parent[parent[row_id]]
            row_id = parent[row_id]
        return row_id

    linked: list[list[Candidate]] = list(groups.values())
    by_trace: dict[str, list[Candidate]] = defaultdict(list)
    for c in fresh:
        if c.root_span_id:
            by_trace[c.root_span_id].append(c)
    linked += list(by_trace.values())
    for members in linked:
        for c in members[1:]:
            parent[find(c.row_id)] = find(members[0].row_id)
    held_sides: dict[str, set[bool]] = defaultdict(set)
    for h in held:
        if h.root_span_id in by_trace:
            held_sides[h.root_span_id].add(h.split == TEST)
    anchored = {
        c.row_id: anchors[key][1].split == TEST
        for key, members in groups.items()
        if key in anchors
        for c in members
    }
    units: dict[str, list[Candidate]] = defaultdict(list)
    for c in fresh:
        units[find(c.row_id)].append(c)
    for members in units.values():
        tied = set().union(*(held_sides.get(c.root_span_id or "", set()) for c in members))
        tied |= {anchored[c.row_id] for c in members if c.row_id in anchored}
        if tied:
            test, why = False not in tied, "held rows"
        else:
            first = min(members, key=lambda c: _order(c.seed, c.row_id))
            test, why = result.splits[first.row_id] == TEST, f"its first row {first.row_id}"
        for c in members:
            if (result.splits[c.row_id] == TEST) != test:
                result.splits[c.row_id] = TEST if test else TRAIN
                side = "test" if test else "out of test"
                trace = c.root_span_id or c.row_id
                result.by_trace[c.row_id] = f"trace {trace} is {side} in this dataset ({why})"


def holdout_overlap(
    rows: Iterable[tuple[str | None, str]], trace_splits: Mapping[str, Mapping[str, Collection[str]]]
) -> dict[str, list[str]]:
    """Traces in test on one side and in train/validation on the other, for (root span id, split)
    rows of one dataset against the other datasets' traces: {root span id: [other dataset, ...]}."""
    found: dict[str, list[str]] = {}
    for trace, split in rows:
        for other, theirs in (trace_splits.get(trace or "") or {}).items():
            if any((split == TEST) != (their == TEST) for their in theirs):
                found.setdefault(str(trace), [])
                if other not in found[str(trace)]:
                    found[str(trace)].append(other)
    return found


def duplicate_groups(rows: Iterable[tuple[str, str, str | None]]) -> dict[str, tuple[int, int, int]]:
    """Per facet (casefolded name): (groups of two or more rows with one conversation, rows in those
    groups, groups whose rows sit in more than one split), for (facet name, text, split) rows."""
    by_key: dict[tuple[str, str], list[str | None]] = defaultdict(list)
    for facet, text, split in rows:
        if not str(text or "").strip():
            continue  # a row without a conversation duplicates nothing
        by_key[(facet.casefold(), conversation_key(facet, text))].append(split)
    out: dict[str, tuple[int, int, int]] = {}
    for (facet, _), splits in by_key.items():
        if len(splits) > 1:
            groups, members, straddling = out.get(facet, (0, 0, 0))
            out[facet] = (groups + 1, members + len(splits), straddling + (len(set(splits)) > 1))
    return out
