"""Everything `facetopt eval` decides before the runner starts: the dataset rows (read, then
filtered), the facet prompts they need, the endpoints, the experiment name and project."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from facetopt.clients.llm.endpoints import (
    Endpoint,
    key_notes,
    mixed_simulation_warning,
    resolve_facet_model,
    resolve_judge,
    simulated_roles,
)
from facetopt.clients.prompt_file import FacetPrompt, load_prompt_file
from facetopt.domain.dataset import DatasetRow
from facetopt.domain.experiments import LABEL_KEY
from facetopt.errors import InputError, NotFoundError
from facetopt.facets.data.selection import TEST_SPLIT, parse_splits, select_rows
from facetopt.services.backends import Backend
from facetopt.services.cost import prices
from facetopt.services.eval.config import EndpointSpec, EvalConfig
from facetopt.services.experiments.holdout import check_test_touch
from facetopt.services.experiments.registry import check_label
from facetopt.services.progress import Progress
from facetopt.settings import DEFAULT_EVAL_DATASET, Settings


@dataclass
class EvalOptions:
    """What the command line asks beyond settings."""

    facets: list[str] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    no_send_logs: bool = False
    experiment_name: str | None = None
    label: str | None = None  # --name: names the run wherever an experiment is named
    force: bool = False  # read the test split for a third prompt version of a facet
    resume: str | None = None  # an unfinished eval run folder whose scored rows are logged


def prompts_for(rows: list[DatasetRow], facets: list[FacetPrompt], prompt_path: Path) -> list[FacetPrompt]:
    """The prompt of every facet the rows need (names compared case-insensitively)."""
    by_name = {f.facet_name.casefold(): f for f in facets}
    needed = list(dict.fromkeys(r.facet_name for r in rows))
    missing = [name for name in needed if name.casefold() not in by_name]
    if missing:
        raise InputError(
            f"facet {', '.join(repr(m) for m in missing)} of the dataset "
            f"is not in the prompt file {prompt_path}",
            hint=f"known facets: {', '.join(f.facet_name for f in facets) or 'none'}; "
            "add the facet with `facetopt bootstrap`, or pass --facet to evaluate only known facets",
        )
    return list({by_name[name.casefold()].facet_name: by_name[name.casefold()] for name in needed}.values())


@dataclass
class EvalPlan:
    """Everything decided before the runner starts."""

    settings: Settings
    backend: str
    dataset: str
    dataset_project: str
    project: str
    project_id: str | None
    model: Endpoint
    judge: Endpoint
    send_logs: bool
    rows: list[DatasetRow]
    facets: list[FacetPrompt]
    prompt_file: str
    filters: dict[str, Any]
    split: str | None
    name: str
    roles: list[str]
    warnings: list[str]
    test_hashes: dict[str, str] = field(default_factory=dict)  # facets whose test rows this run reads
    test_facets: list[str] = field(default_factory=list)  # facets with test rows in the dataset
    force: bool = False
    supersedes_id: str | None = None  # an unfinished earlier experiment this run replaces
    label: str | None = None  # --name
    notes: list[str] = field(default_factory=list)  # said once per output root, e.g. the runner fallback

    @property
    def prompt_hashes(self) -> dict[str, str]:
        return {f.facet_name: f.prompt_sha256 for f in self.facets}

    def config(self, rows_file: Path) -> EvalConfig:
        return EvalConfig(
            project=self.project,
            project_id=self.project_id,
            experiment_name=self.name,
            facet_model=EndpointSpec.of(self.model),
            judge=EndpointSpec.of(self.judge),
            max_tokens=self.settings.max_tokens,
            request_timeout=self.settings.timeout_for(self.model.model),
            call_deadline=self.settings.call_deadline,
            concurrency=self.settings.eval_concurrency_for(self.model.model),
            store_path=str(self.settings.store_path.resolve()),
            use_cache=self.settings.use_cache,
            trials=self.settings.trials,
            no_send_logs=not self.send_logs,
            rows_file=str(rows_file.resolve()),
            facets=self.facets,
            prices=prices(self.settings),
            max_cost=self.settings.max_cost,
            metadata=self.experiment_metadata(),
        )

    def experiment_metadata(self) -> dict[str, Any]:
        """The original eval's experiment metadata keys (seed-compat.md), then facetopt's own."""
        facets = self.filters.get("facet") or []
        row_ids = self.filters.get("row_id") or []
        return {
            "dataset_project": self.dataset_project,
            "dataset": self.dataset,
            "model": self.model.model,
            "prompt_file": self.prompt_file,
            "max_tokens": self.settings.max_tokens,
            "request_timeout": self.settings.timeout_for(self.model.model),
            "trial_count": self.settings.trials,
            "max_rows": self.settings.max_rows,
            "facet_filter": sorted(f.casefold() for f in facets) or None,
            "split_filter": self.filters.get("split") or None,
            "scoped_dataset_ids_count": len(row_ids),
            "factuality_model": self.judge.model,
            "prompt_hashes": self.prompt_hashes,
            "judge_model": self.judge.model,
            "split": self.split,
            "filters": self.filters,
            "simulated_roles": self.roles,
            "test_facets": self.test_facets,
            **({"supersedes": self.supersedes_id} if self.supersedes_id else {}),
            **({LABEL_KEY: self.label} if self.label else {}),
        }

    def secrets(self) -> list[str | None]:
        key = self.settings.braintrust_api_key
        # a base URL's `user:password@` part is a credential too: the password is redacted like a key
        passwords = [urlsplit(e.base_url).password for e in (self.model, self.judge) if e.base_url]
        return [self.model.secret(), self.judge.secret(), key.get_secret_value() if key else None, *passwords]


def plan_eval(
    settings: Settings,
    backend: Backend,
    options: EvalOptions,
    progress: Progress,
    warn: Callable[[str], None],
) -> EvalPlan:
    # the original eval's chains: dataset "Facet groundtruth", the dataset project defaults to the
    # eval project, which defaults to the target project ("Facet Optimizer")
    label = check_label(options.label)  # before anything is read or paid for
    dataset = settings.dataset or DEFAULT_EVAL_DATASET
    dataset_project = settings.eval_dataset_project
    project = settings.eval_project
    facets = options.facets or settings.facet_filter_list
    row_ids = options.row_ids or settings.dataset_id_list
    splits = parse_splits(settings.split)
    document = load_prompt_file(settings.prompt_path)
    model, judge = resolve_facet_model(settings), resolve_judge(settings)
    send_logs = backend.remote and not options.no_send_logs
    warnings: list[str] = []

    def warned(message: str) -> None:
        warnings.append(message)
        warn(message)

    progress.stage(f"reading dataset {dataset!r} of project {dataset_project!r} ({backend.name})")
    rows = backend.dataset_rows(dataset_project, dataset, must_exist=True)  # names the ones that exist
    project_id = backend.experiment_project_id(project) if send_logs else None
    if not rows:
        raise NotFoundError(
            f"dataset {dataset!r} in project {dataset_project!r} has no rows ({backend.name} backend)",
            hint="create it with `facetopt dataset create`; check --dataset, --dataset-project, --backend",
        )
    selected = select_rows(
        rows,
        splits=splits,
        facets=facets,
        row_ids=row_ids,
        max_rows=settings.max_rows,
        warn=warned,
    )
    for note in key_notes(model, judge):
        warned(note)
    roles = simulated_roles(model, judge)
    if roles:
        warned(
            mixed_simulation_warning(model, judge)
            or "SIMULATED facet model and judge (no key or base URL configured, or simulated://): the scores come from "
            "facetopt's deterministic simulation, not a real model"
        )
    prompts = prompts_for(selected, document.facets, document.path)
    test_hashes = test_hashes_of(selected, prompts)
    if test_hashes:
        for message in check_test_touch(
            settings, dataset_project, dataset, test_hashes, options.force, "eval --split test"
        ):
            warned(message)
    given = {
        "split": splits,
        "facet": facets,
        "row_id": row_ids,
        "max_rows": settings.max_rows,
    }
    return EvalPlan(
        settings=settings,
        backend=backend.name,
        dataset=dataset,
        dataset_project=dataset_project,
        project=project,
        project_id=project_id,
        model=model,
        judge=judge,
        send_logs=send_logs,
        rows=selected,
        facets=prompts,
        prompt_file=str(document.path),
        filters={k: v for k, v in given.items() if v not in (None, [])},
        split=",".join(splits) if splits else None,
        name=options.experiment_name or f"{settings.experiment_prefix}-{settings.model}",
        roles=roles,
        warnings=warnings,
        test_hashes=test_hashes,
        test_facets=sorted({r.facet_name for r in rows if (r.split or "").lower() == TEST_SPLIT}),
        force=options.force,
        label=label,
    )


def test_hashes_of(rows: list[DatasetRow], facets: list[FacetPrompt]) -> dict[str, str]:
    """{facet: prompt sha} of the facets with test rows among `rows`."""
    on_test = {r.facet_name.casefold() for r in rows if (r.split or "").lower() == TEST_SPLIT}
    return {f.facet_name: f.prompt_sha256 for f in facets if f.facet_name.casefold() in on_test}
