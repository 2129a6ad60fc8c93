"""Name an experiment (id, name, `latest`, `previous`) and load its rows.

The experiments come from the command's backend: on Braintrust every experiment of the project
(whoever ran it) merged with the registry, on the local backend the registry. `latest` and
`previous` choose among those with the same backend and dataset as the command (and, for compare,
the same split; a run over all splits counts for every split). A name (or an `eval --name`
label) matches the newest experiment of that name or label, preferring runs in the command's scope; an id or id prefix any of them
(on Braintrust any id of the org). Rows come from the local store, else from the command's
backend (a Braintrust experiment whose rows were not stored locally is read through `/btql`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import EvalRow, ExperimentRecord
from facetopt.errors import InputError, NotFoundError
from facetopt.services.backends import Backend, ExperimentListing, open_backend
from facetopt.settings import Settings

LATEST = "latest"
PREVIOUS = "previous"
ALL_SPLITS = "all"
MIN_ID_PREFIX = 6
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
LIST_HINT = "list them with `facetopt inspect experiments`"


@dataclass(frozen=True)
class Scope:
    """What `latest` / `previous` choose among."""

    backend: str
    dataset: str | None = None
    dataset_project: str | None = None
    split: str | None = None  # compare only; None: any split
    model: str | None = None

    def describe(self) -> str:
        parts = [f"backend {self.backend}"]
        if self.dataset:
            parts.append(f"dataset {self.dataset!r}")
        if self.split:
            parts.append(f"split {self.split}")
        if self.model:
            parts.append(f"model {self.model!r}")
        return ", ".join(parts)


def split_covers(run_split: str | None, wanted: str | None) -> bool:
    """A run evaluated `wanted` rows: no split asked, a run over all splits, or the split listed."""
    if not wanted or wanted == ALL_SPLITS or not run_split:
        return True
    return wanted.strip().casefold() in {s.strip().casefold() for s in run_split.split(",")}


def in_scope(record: ExperimentRecord, scope: Scope) -> bool:
    """A complete run with the scope's backend, dataset, model and split."""
    return record.complete and in_scope_any_status(record, scope)


def in_scope_any_status(record: ExperimentRecord, scope: Scope) -> bool:
    if record.backend != scope.backend or record.superseded_by:
        return False
    if scope.dataset and record.dataset != scope.dataset:
        return False
    if scope.dataset_project and record.dataset_project and record.dataset_project != scope.dataset_project:
        return False
    if scope.model and record.model != scope.model:
        return False
    return split_covers(record.split, scope.split)


def resolve_reference(
    records: list[ExperimentRecord],
    reference: str,
    scope: Scope,
    where: str = "the registry",
    notes: list[str] | None = None,
) -> ExperimentRecord:
    """The experiment a reference names. `records` are newest first; `where` names where they
    come from, for the messages; `notes` hears about the runs `latest` / `previous` passed over
    because they are not complete."""
    ref = reference.strip()
    if not ref:
        raise InputError(
            "empty experiment reference", hint="name an experiment by id or name, or use latest / previous"
        )
    if not records:
        raise NotFoundError(
            "the experiment registry is empty" if where == "the registry" else f"{where} hold no experiments",
            hint="run `facetopt eval` first (or pass the --output-root that holds your runs)",
        )
    lowered = ref.casefold()
    if lowered in (LATEST, PREVIOUS):
        return _nth_in_scope(records, 0 if lowered == LATEST else 1, lowered, scope, where, notes)
    by_id = [r for r in records if r.experiment_id == ref]
    if by_id:
        return by_id[0]
    named = [r for r in records if ref in (r.experiment_name, r.label)]
    if named:
        scoped = [r for r in named if in_scope(r, scope)]
        return (scoped or named)[0]
    if len(ref) >= MIN_ID_PREFIX:
        prefixed = [r for r in records if r.experiment_id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise InputError(
                f"experiment id prefix {ref!r} matches {len(prefixed)} experiments",
                hint="give more characters of the id; " + LIST_HINT,
            )
    raise unknown_experiment(ref, records, where)


def check_label(label: str | None) -> str | None:
    """An `eval --name` label: names the run wherever an experiment is named, so it must not read as
    one of the words that choose a run, nor be empty."""
    if label is None:
        return None
    cleaned = label.strip()
    if not cleaned or cleaned.casefold() in (LATEST, PREVIOUS, ALL_SPLITS):
        raise InputError(
            f"--name {label!r} cannot name a run",
            hint="pick a label of your own (e.g. baseline, boundary-v2); latest, previous and all "
            "already mean something wherever an experiment is named",
        )
    return cleaned


def unknown_experiment(
    reference: str, records: Iterable[ExperimentRecord], where: str = "the registry"
) -> NotFoundError:
    known = sorted(
        {r.experiment_name for r in records}
        | {r.experiment_id for r in records}
        | {r.label for r in records if r.label}
    )
    nearest = difflib.get_close_matches(reference, known, n=3, cutoff=0.5)
    hint = LIST_HINT
    if nearest:
        hint = "did you mean " + ", ".join(repr(n) for n in nearest) + "? " + LIST_HINT
    return NotFoundError(f"no experiment named {reference!r} in {where}", hint=hint)


def _nth_in_scope(
    records: list[ExperimentRecord],
    index: int,
    word: str,
    scope: Scope,
    where: str = "the registry",
    notes: list[str] | None = None,
) -> ExperimentRecord:
    candidates = [r for r in records if in_scope(r, scope)]
    chosen = candidates[index] if len(candidates) > index else None
    # the runs that would have been chosen but are not complete, newer than the one chosen
    passed = [
        r
        for r in records
        if not r.complete
        and in_scope_any_status(r, scope)
        and (chosen is None or (r.created, r.experiment_id) > (chosen.created, chosen.experiment_id))
    ]
    skipped = skipped_note(word, passed)
    if chosen is not None:
        if skipped and notes is not None:
            notes.append(skipped)
        return chosen
    needed = index + 1
    raise NotFoundError(
        f"`{word}` needs {needed} complete run{'s' if needed > 1 else ''} with {scope.describe()}; "
        f"{where} {'has' if where == 'the registry' else 'have'} {len(candidates)}"
        + (f" ({skipped})" if skipped else ""),
        hint="run `facetopt eval` (with the same --split), name experiments by id or name, "
        "or check --backend / --dataset; " + LIST_HINT,
    )


def skipped_note(word: str, passed: list[ExperimentRecord]) -> str | None:
    """`latest` passed over N runs that are not complete: which, and why."""
    if not passed:
        return None
    shown = "; ".join(r.describe_status() for r in passed[:3])
    more = f"; and {len(passed) - 3} more" if len(passed) > 3 else ""
    return (
        f"`{word}` passed over {len(passed)} run(s) that are not complete: {shown}{more} "
        "(name one by id to use it anyway)"
    )


def filter_rows(rows: Iterable[EvalRow], split: str | None = None, facet: str | None = None) -> list[EvalRow]:
    """Rows on `split` (None or `all`: every split) of `facet` (case-insensitive; None: every facet)."""
    wanted_split = None if not split or split == ALL_SPLITS else split.casefold()
    wanted_facet = facet.casefold() if facet else None
    return [
        row
        for row in rows
        if (wanted_split is None or (row.split or "").casefold() == wanted_split)
        and (wanted_facet is None or row.facet_name.casefold() == wanted_facet)
    ]


def check_facet(rows: list[EvalRow], facet: str | None, record: ExperimentRecord) -> None:
    """An unknown --facet is an error that names the facets the experiment has."""
    if not facet:
        return
    names = sorted({row.facet_name for row in rows}, key=str.casefold)
    if facet.casefold() not in {name.casefold() for name in names}:
        raise InputError(
            f"experiment {record.experiment_name!r} has no facet {facet!r}",
            hint="its facets: " + (", ".join(names) if names else "(none: it has no rows)"),
        )


class Experiments:
    """The registry of one output root plus the way to each experiment's rows, on one backend."""

    def __init__(self, settings: Settings, backend: Backend, store: LocalStore | None):
        self.settings = settings
        self.backend = backend
        self.store = store
        self._records: list[ExperimentRecord] | None = None
        self.notes: list[str] = []  # what `latest` / `previous` passed over, for the command's report

    def scope(self, split: str | None = None, model: str | None = None) -> Scope:
        return Scope(
            backend=self.backend.name,
            dataset=self.settings.dataset,
            dataset_project=self.settings.dataset_project
            or self.settings.project
            or self.settings.target_project,
            split=None if split == ALL_SPLITS else split,
            model=model,
        )

    def records(self) -> list[ExperimentRecord]:
        """What names, ids and latest / previous choose among, newest first: on Braintrust the
        project's experiments merged with the registry; on the local backend the registry."""
        if self._records is None:
            self._records = self.backend.experiments(self.store)
        return self._records

    def registry(self) -> list[ExperimentRecord]:
        """This machine's runs alone, newest first, without contacting any backend (dry runs)."""
        return self.store.experiments() if self.store is not None else []

    def listing(self, limit: int | None = None) -> ExperimentListing:
        """`inspect experiments`: the newest `limit` experiments (None: all) of the backend."""
        return self.backend.experiment_listing(self.store, limit)

    def resolve(self, reference: str, split: str | None = None, model: str | None = None) -> ExperimentRecord:
        try:
            return resolve_reference(
                self.records(),
                reference,
                self.scope(split, model),
                self.backend.experiments_where(),
                self.notes,
            )
        except NotFoundError:
            if not _UUID_RE.match(reference.strip()):
                raise
            # an id of another project of the org (or one created since the listing was read)
            found = self.backend.experiment_by_id(reference.strip())
            if found is None:
                raise
            return found

    def rows(self, record: ExperimentRecord) -> list[EvalRow]:
        if self.store is not None and self.store.has_experiment_rows(record.experiment_id):
            return self.store.experiment_rows(record.experiment_id)
        return self.backend.experiment_rows(record)

    def prompt_text(self, sha: str, *records: ExperimentRecord) -> str | None:
        """A prompt's text: from this machine's prompt history, else from the experiments that carry
        it in their metadata (`records`, then every experiment listed)."""
        text = self.store.prompt_text(sha) if self.store is not None else None
        if text is not None:
            return text
        known = list(records) + (self._records or [])
        return next((r.prompt_texts[sha] for r in known if sha in r.prompt_texts), None)

    def validation_runs(self, dataset: str, up_to: str | None = None) -> list[dict[str, str]]:
        """Prompt hashes ({facet: sha}) of the runs that evaluated `dataset`'s validation rows (split
        validation, or every split), created at or before `up_to`, newest first: on Braintrust every
        experiment of the project, whoever ran it; on the local backend the registry's runs. Runs
        that are not complete do not count."""
        return [
            dict(r.prompt_hashes)
            for r in self.records()
            if r.dataset == dataset
            and r.complete
            and not r.superseded_by
            and (up_to is None or r.created <= up_to)
            and split_covers(r.split, "validation")
        ]


@contextmanager
def open_experiments(
    settings: Settings, announce: Callable[[str], None] | None = None, backend: Backend | None = None
) -> Iterator[Experiments]:
    """The registry (read-only) on the settings' backend for one command; the store is closed afterwards.
    Partial runs whose rows have since reached Braintrust are reconciled first (reconcile.py)."""
    from facetopt.services.experiments.reconcile import reconcile_partial_runs

    backend = backend if backend is not None else open_backend(settings, announce)
    reconcile_partial_runs(settings, backend, announce)
    store = LocalStore(settings.store_path, read_only=True) if settings.store_path.exists() else None
    try:
        yield Experiments(settings, backend, store)
    finally:
        if store is not None:
            store.close()
