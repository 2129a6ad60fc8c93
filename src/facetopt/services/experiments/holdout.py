"""The test split as a holdout: who looked at it, and the rule of two prompt versions per facet.

Per dataset and facet, the test rows may be evaluated for two prompt versions: the baseline and
the final candidate. Every look (an eval on test, `inspect failures` on test rows) is recorded in
the local store with the prompt hash and the experiment; a third version needs `--force`, is
recorded as forced, and `compare` and `inspect experiments` say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel

from facetopt.clients.local.store import LocalStore
from facetopt.domain.experiments import ExperimentRecord, HoldoutTouch
from facetopt.errors import InputError
from facetopt.settings import Settings

ALLOWED_TEST_VERSIONS = 2  # the baseline and the final candidate


class HoldoutStatus(BaseModel):
    """How many prompt versions of one facet have looked at a dataset's test rows."""

    dataset_project: str
    dataset: str
    facet_name: str
    prompt_versions: int
    touches: int
    forced: int = 0

    @property
    def overused(self) -> bool:
        return self.prompt_versions > ALLOWED_TEST_VERSIONS

    def describe(self) -> str:
        return (
            f"test split of {self.dataset!r} touched by {self.prompt_versions} prompt version"
            f"{'s' if self.prompt_versions != 1 else ''} of facet {self.facet_name}"
        )


def _read_touches(
    settings: Settings, dataset_project: str | None = None, dataset: str | None = None
) -> list[HoldoutTouch]:
    if not settings.store_path.exists():
        return []
    with LocalStore(settings.store_path, read_only=True) as store:
        return store.test_touches(dataset_project, dataset)


def statuses(touches: Iterable[HoldoutTouch]) -> list[HoldoutStatus]:
    """Per (dataset project, dataset, facet): distinct prompt versions, touches and forced touches."""
    grouped: dict[tuple[str, str, str], list[HoldoutTouch]] = {}
    for touch in touches:
        key = (touch.dataset_project, touch.dataset, touch.facet_name.casefold())
        grouped.setdefault(key, []).append(touch)
    return [
        HoldoutStatus(
            dataset_project=group[0].dataset_project,
            dataset=group[0].dataset,
            facet_name=group[0].facet_name,
            prompt_versions=len({t.prompt_sha for t in group}),
            touches=len(group),
            forced=sum(t.forced for t in group),
        )
        for group in grouped.values()
    ]


def dataset_status(settings: Settings, dataset_project: str, dataset: str) -> list[HoldoutStatus]:
    return statuses(_read_touches(settings, dataset_project, dataset))


def check_test_touch(
    settings: Settings,
    dataset_project: str,
    dataset: str,
    prompt_hashes: Mapping[str, str],
    force: bool,
    command: str,
) -> list[str]:
    """Refuse (without `force`) a look at test rows by a third prompt version of a facet; with `force`,
    return the warnings to show. `prompt_hashes` are the facets whose test rows are about to be read."""
    touches = _read_touches(settings, dataset_project, dataset)
    warnings = []
    for facet, sha in sorted(prompt_hashes.items()):
        seen = list(
            dict.fromkeys(t.prompt_sha for t in touches if t.facet_name.casefold() == facet.casefold())
        )
        if sha in seen or len(seen) < ALLOWED_TEST_VERSIONS:
            continue
        versions = len(seen) + 1
        message = (
            f"the test split of {dataset!r} has been read for facet {facet} by {len(seen)} prompt versions "
            f"({', '.join(s[:12] for s in seen)}); {sha[:12]} would be version {versions}"
        )
        if not force:
            raise InputError(
                message,
                hint="test is for one final check (baseline and final candidate); iterate on train and "
                f"validation instead, or pass --force to {command} anyway (recorded and shown by compare "
                "and inspect experiments)",
            )
        warnings.append(f"{message}: --force, recorded; test split touched by {versions} prompt versions")
    return warnings


def record_test_touch(
    settings: Settings,
    dataset_project: str,
    dataset: str,
    prompt_hashes: Mapping[str, str],
    experiment_id: str,
    command: str,
    force: bool,
) -> None:
    """Record one look at the test rows per facet (a forced look is one by a third or later version)."""
    with LocalStore(settings.store_path) as store:
        before = store.test_touches(dataset_project, dataset)
        touches = []
        for facet, sha in sorted(prompt_hashes.items()):
            seen = {t.prompt_sha for t in before if t.facet_name.casefold() == facet.casefold()}
            touches.append(
                HoldoutTouch(
                    dataset_project=dataset_project,
                    dataset=dataset,
                    facet_name=facet,
                    prompt_sha=sha,
                    experiment_id=experiment_id,
                    command=command,
                    forced=force and sha not in seen and len(seen) >= ALLOWED_TEST_VERSIONS,
                )
            )
        store.add_test_touches(touches)


def all_statuses(store: LocalStore | None) -> list[HoldoutStatus]:
    """Every dataset's and facet's test split use, from an open store (None: nothing recorded)."""
    return statuses(store.test_touches()) if store is not None else []


def failures_touch(
    settings: Settings,
    record: ExperimentRecord,
    facet: str,
    test_rows: int,
    force: bool,
) -> list[str]:
    """`inspect failures` that lists test rows is a look at the test split by the experiment's prompt
    version of the facet: checked like an eval on test, then recorded. Returns the warnings."""
    if not test_rows:
        return []
    sha = next((v for k, v in record.prompt_hashes.items() if k.casefold() == facet.casefold()), None)
    if sha is None:
        return []
    hashes = {facet: sha}
    project = record.dataset_project or ""
    warnings = check_test_touch(
        settings, project, record.dataset, hashes, force, "inspect failures --split test"
    )
    record_test_touch(
        settings, project, record.dataset, hashes, record.experiment_id, "inspect failures", force
    )
    return warnings
