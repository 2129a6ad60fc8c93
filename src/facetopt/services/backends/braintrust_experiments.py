"""A Braintrust project's experiments as facetopt reads them: every experiment of the project,
whoever logged it (facetopt on any machine, the original scripts, the UI), merged with what this
machine's registry adds (row and error counts, runner, URL).

An experiment's metadata says what it ran: the original eval's keys (`dataset`, `model`,
`split_filter`, `prompt_hashes`, ...) and, when facetopt ran it, facetopt's own (`split`,
`filters`, `facetopt_version`, `prompt_texts`). The prompt texts are keyed by their sha256 and are
used only when the text hashes to its key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, get_args

from facetopt.domain.experiments import (
    FACETOPT_VERSION_KEY,
    LABEL_KEY,
    PROMPT_TEXTS_KEY,
    RUN_STATUS_CAUSE_KEY,
    RUN_STATUS_KEY,
    RUNNING,
    ExperimentRecord,
    RunStatus,
)
from facetopt.errors import FacetoptError, NotFoundError
from facetopt.facets.data.rows import prompt_sha256
from facetopt.services.backends.protocol import ExperimentListing
from facetopt.settings import Settings

if TYPE_CHECKING:
    from facetopt.clients.braintrust import BraintrustConnection

UNKNOWN = "(unknown)"


def experiments_project(settings: Settings) -> str:
    """The project experiments are logged to: --project, else the target project, else the dataset's."""
    return settings.project or settings.target_project or settings.dataset_project or "Facet Optimizer"


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list):
        return None
    items = [str(item).strip() for item in value if str(item).strip()]
    return items or None


def _split_of(metadata: dict[str, Any], by_facetopt: bool) -> str | None:
    if by_facetopt and isinstance(metadata.get("split"), str):
        return metadata["split"] or None
    splits = _str_list(metadata.get("split_filter"))
    return ",".join(splits) if splits else None


def _filters_of(metadata: dict[str, Any], by_facetopt: bool) -> dict[str, Any]:
    if by_facetopt and isinstance(metadata.get("filters"), dict):
        return dict(metadata["filters"])
    # the original eval's keys, in the shape facetopt records its own filters
    found = {
        "split": _str_list(metadata.get("split_filter")),
        "facet": _str_list(metadata.get("facet_filter")),
        "max_rows": metadata.get("max_rows") or None,
    }
    return {key: value for key, value in found.items() if value is not None}


def verified_prompt_texts(metadata: dict[str, Any]) -> dict[str, str]:
    """The prompt texts the experiment carries whose sha256 is the key they are filed under."""
    texts = metadata.get(PROMPT_TEXTS_KEY)
    if not isinstance(texts, dict):
        return {}
    return {
        str(sha): text
        for sha, text in texts.items()
        if isinstance(text, str) and prompt_sha256(text) == str(sha)
    }


def record_from_experiment(experiment: dict[str, Any], project: str) -> ExperimentRecord:
    """A project experiment (as `GET /v1/experiment` lists it) as an ExperimentRecord."""
    metadata = experiment.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    by_facetopt = FACETOPT_VERSION_KEY in metadata
    hashes = metadata.get("prompt_hashes")
    roles = metadata.get("simulated_roles")
    test_facets = metadata.get("test_facets")
    status, cause = listed_status(metadata)
    label = metadata.get(LABEL_KEY)
    return ExperimentRecord(
        status=status,
        status_cause=cause,
        experiment_id=str(experiment["id"]),
        experiment_name=str(experiment.get("name") or experiment["id"]),
        label=label if by_facetopt and isinstance(label, str) and label else None,
        backend="braintrust",
        project=project,
        model=str(metadata.get("model") or UNKNOWN),
        dataset=str(metadata.get("dataset") or experiment.get("dataset_id") or UNKNOWN),
        dataset_project=metadata.get("dataset_project")
        if isinstance(metadata.get("dataset_project"), str)
        else None,
        dataset_id=experiment.get("dataset_id") if isinstance(experiment.get("dataset_id"), str) else None,
        split=_split_of(metadata, by_facetopt),
        filters=_filters_of(metadata, by_facetopt),
        prompt_file=metadata.get("prompt_file") if isinstance(metadata.get("prompt_file"), str) else None,
        prompt_hashes={str(k): str(v) for k, v in hashes.items()} if isinstance(hashes, dict) else {},
        prompt_texts=verified_prompt_texts(metadata),
        row_count=None,
        error_count=None,
        created=str(experiment.get("created") or ""),
        simulated_roles=[str(r) for r in roles] if isinstance(roles, list) else [],
        stored_locally=False,
        by_facetopt=by_facetopt,
        in_registry=False,
        test_facets=[str(f) for f in test_facets] if by_facetopt and isinstance(test_facets, list) else None,
    )


NEVER_ENDED = (
    "its run never recorded its end in Braintrust (it is still running, or stopped before it finished)"
)


def listed_status(metadata: dict[str, Any]) -> tuple[RunStatus, str | None]:
    """An experiment's status from its metadata: facetopt writes `facetopt_status` "running" when
    it creates the experiment and the final status at the end. Without the key (logged by
    something else, or by a facetopt from before it) the experiment is taken as complete."""
    status = metadata.get(RUN_STATUS_KEY)
    if status is None:
        return "complete", None
    cause = metadata.get(RUN_STATUS_CAUSE_KEY)
    cause = str(cause) if cause else None
    if status in get_args(RunStatus):
        return status, cause
    if status == RUNNING:
        return "partial", NEVER_ENDED
    return "partial", f"unknown run status {str(status)[:40]!r} in its metadata"


def merge_records(
    project: Iterable[ExperimentRecord], registry: Iterable[ExperimentRecord]
) -> list[ExperimentRecord]:
    """The project's experiments and the registry's runs, newest first. An experiment both know is
    the registry's entry (counts, runner, URL) with what only the project knows filled in."""
    mine = {record.experiment_id: record for record in registry}
    merged: dict[str, ExperimentRecord] = dict(mine)
    for record in project:
        own = mine.get(record.experiment_id)
        if own is None:
            merged[record.experiment_id] = record
            continue
        merged[record.experiment_id] = own.model_copy(
            update={
                "dataset_id": own.dataset_id or record.dataset_id,
                "prompt_texts": {**record.prompt_texts, **own.prompt_texts},
                "in_registry": True,
            }
        )
    return sorted(merged.values(), key=lambda r: (r.created, r.experiment_id), reverse=True)


def list_project_experiments(
    conn: BraintrustConnection,
    settings: Settings,
    registry: list[ExperimentRecord],
    limit: int | None = None,
) -> ExperimentListing:
    """The project's experiments (up to `limit`, newest first) merged with the registry's runs."""
    from facetopt.clients.braintrust import list_experiments, resolve_project

    name = experiments_project(settings)
    try:
        project = resolve_project(conn, name)
    except NotFoundError:  # no such project yet: it holds no experiments
        records = merge_records([], registry)
        note = f"Braintrust project {name!r} does not exist (yet): only the registry's runs are listed"
        return ExperimentListing(records[:limit], name, limit is not None and len(records) > limit, [note])
    found = list_experiments(conn, project.id, limit=None if limit is None else limit + 1)
    more = limit is not None and len(found) > limit
    listed = [record_from_experiment(e, project.name) for e in found[:limit] if isinstance(e.get("id"), str)]
    records = merge_records(listed, registry)
    if limit is not None:
        more = more or len(records) > limit
        records = records[:limit]
    return ExperimentListing(records=records, project=project.name, more=more)


def project_experiment(conn: BraintrustConnection, experiment_id: str) -> ExperimentRecord:
    """One experiment by id, in whatever project of the org it is."""
    from facetopt.clients.braintrust import get_experiment, resolve_project

    experiment = get_experiment(conn, experiment_id)
    project = str(experiment.get("project_id") or "")
    try:
        project = resolve_project(conn, project).name if project else project
    except FacetoptError:  # the project's name is for display; the id is enough to read the rows
        pass
    return record_from_experiment(experiment, project)
