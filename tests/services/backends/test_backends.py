"""The backend chooser, and services that work through whatever backend they are given."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from facetopt.domain.dataset import DatasetRow
from facetopt.errors import NotFoundError
from facetopt.services.backends import RowsUploaded, open_backend
from facetopt.services.backends.braintrust import BraintrustBackend
from facetopt.services.backends.local import LocalBackend
from facetopt.services.backends.sources import LocalSpanSource
from facetopt.services.dataset.command import run_dataset_create
from facetopt.services.dataset.upload import run_dataset_upload
from facetopt.services.eval.plan import EvalOptions, plan_eval
from facetopt.services.experiments.inspect import SqlResult, inspect_dataset, inspect_sql
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.services.eval.helpers import DATASET, PROJECT, make_rows, seed_local_state

# -- the chooser ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "env", "kind", "remote"),
    [
        ({"backend": "local"}, {"BRAINTRUST_API_KEY": "sk-bt"}, LocalBackend, False),
        ({"backend": "braintrust"}, {}, BraintrustBackend, True),
        ({}, {"BRAINTRUST_API_KEY": "sk-bt"}, BraintrustBackend, True),
        ({}, {}, LocalBackend, False),
        ({}, {"FACET_OPTIMIZER_BACKEND": "local", "BRAINTRUST_API_KEY": "sk-bt"}, LocalBackend, False),
    ],
)
def test_each_backend_gets_its_implementation(monkeypatch, flags, env, kind, remote):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    said: list[str] = []
    backend = open_backend(load_settings(None, **flags), said.append)  # no login yet: lazy
    assert type(backend) is kind
    assert backend.name == ("braintrust" if kind is BraintrustBackend else "local")
    assert backend.remote is remote
    chosen = flags or "FACET_OPTIMIZER_BACKEND" in env
    assert said == ([] if chosen else [f"backend: {backend.name} ({_why(env)}; choose with --backend)"])


def _why(env: dict[str, str]) -> str:
    return "BRAINTRUST_API_KEY is set" if "BRAINTRUST_API_KEY" in env else "no BRAINTRUST_API_KEY is set"


# -- services never need the name ---------------------------------------------------------------------


class Elsewhere:
    """A backend that is neither local nor Braintrust: whatever a service does, it does through this."""

    name = "elsewhere"

    def __init__(self, rows: list[DatasetRow] | None = None, remote: bool = False):
        self.remote = remote
        self.rows = rows or []
        self.uploads: list[tuple[str, str, list[DatasetRow]]] = []
        self.project_ids: list[str] = []
        self.queries: list[str] = []

    def span_source(self, *, no_writes: bool) -> LocalSpanSource:
        return LocalSpanSource([], None)  # the bundled sample

    def dataset_rows(self, project: str, dataset: str, *, must_exist: bool = False) -> list[DatasetRow]:
        if must_exist and not self.rows:
            raise NotFoundError(f"no dataset {dataset!r} elsewhere")
        return self.rows

    def upload_rows(
        self, project: str, dataset: str, rows: Sequence[DatasetRow], *, retry=None
    ) -> RowsUploaded:
        self.uploads.append((project, dataset, list(rows)))
        return RowsUploaded(written=len(rows), verified=len(rows), dataset_id="ds-1", org="org-elsewhere")

    def experiments(self, store):
        return []

    def experiment_rows(self, record):
        raise NotFoundError("none")

    def confirmed_results(self, experiment_id: str) -> int | None:
        return None

    def experiment_project_id(self, project: str) -> str | None:
        self.project_ids.append(project)
        return "project-elsewhere"

    def sql(self, sql: str, resolve, store) -> SqlResult:
        self.queries.append(sql)
        return SqlResult(backend=self.name, query=sql, columns=["n"], rows=[{"n": 1}])


def _settings(root: Path, **flags):
    return load_settings(
        None, output_root=root, target_project=PROJECT, dataset=DATASET, ground_truth_api_base="simulated://",
        api_base="simulated://", judge_api_base="simulated://", **flags,
    )  # fmt: skip


@pytest.mark.slow
def test_dataset_create_stores_its_rows_through_the_backend_it_is_given(tmp_path: Path):
    backend = Elsewhere()
    summary = run_dataset_create(
        _settings(tmp_path / "state", positive_limit=2, negative_limit=2),
        root_span_ids=None, root_span_id_file=None, skip_upload=False, dry_run=False,
        progress=SilentProgress(), announce=lambda _: None, warn=lambda _: None, backend=backend,
    )  # fmt: skip
    ((project, dataset, rows),) = backend.uploads
    assert (project, dataset) == (PROJECT, DATASET) and rows
    assert summary.backend == "elsewhere" and summary.balance.backend == "elsewhere"
    assert summary.counts.uploaded_rows == summary.counts.dataset_rows == len(rows)
    written = json.loads((Path(summary.run_dir) / "summary.json").read_text())
    # the original scripts' keys first, in their order, then the report of what the dataset holds
    assert list(written["counts"]) == [
        "candidates", "final_facets", "parsed_calls", "parse_failures", "selected_calls", "dataset_rows",
        "uploaded_rows", "dataset_total_rows", "rows_from_earlier_runs", "duplicate_rows_merged",
        "existing_rows", "kept_reviewed_labels", "placed_by_duplicates", "placed_by_traces",
    ]  # fmt: skip
    assert written["counts"]["dataset_total_rows"] is None  # this backend does not say what it holds
    assert written["counts"]["uploaded_rows"] == len(rows)


def test_skip_upload_keeps_rows_off_a_remote_backend_whatever_its_name(tmp_path: Path):
    backend = Elsewhere(remote=True)
    summary = run_dataset_create(
        _settings(tmp_path / "state", positive_limit=1, negative_limit=1),
        root_span_ids=None, root_span_id_file=None, skip_upload=True, dry_run=False,
        progress=SilentProgress(), announce=lambda _: None, warn=lambda _: None, backend=backend,
    )  # fmt: skip
    assert backend.uploads == [] and summary.counts.uploaded_rows == 0
    assert any(w.startswith("--skip-upload: nothing was written to elsewhere") for w in summary.warnings)


def test_dataset_upload_goes_to_the_backend_it_is_given(tmp_path: Path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = make_rows(4)
    (run_dir / "dataset_rows.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rows))
    backend = Elsewhere()
    summary = run_dataset_upload(
        _settings(tmp_path / "state"), run_dir=run_dir, target_project=None, dataset=None,
        allow_simulated=False, announce=lambda _: None, backend=backend,
    )  # fmt: skip
    assert backend.uploads == [(PROJECT, DATASET, rows)]
    assert (summary.backend, summary.target_org, summary.dataset_id) == ("elsewhere", "org-elsewhere", "ds-1")
    assert summary.written == summary.verified == 4


def test_inspect_dataset_and_sql_read_through_the_backend(tmp_path: Path):
    backend = Elsewhere(rows=make_rows(6))
    with open_experiments(_settings(tmp_path / "state"), backend=backend) as experiments:
        report = inspect_dataset(experiments)
        result = inspect_sql(experiments, "SELECT count(*) AS n FROM dataset('x')")
    assert (report.backend, report.total.rows) == ("elsewhere", 6)
    assert backend.queries == ["SELECT count(*) AS n FROM dataset('x')"] and result.rows == [{"n": 1}]


@pytest.mark.parametrize(
    ("remote", "no_send_logs", "logged"), [(True, False, True), (True, True, False), (False, False, False)]
)
def test_eval_plan_reads_rows_and_logs_remotely_only_when_the_backend_is_remote(
    tmp_path: Path, remote: bool, no_send_logs: bool, logged: bool
):
    root = seed_local_state(tmp_path / "state", [])  # the prompt file; the rows come from the backend
    backend = Elsewhere(rows=make_rows(4), remote=remote)
    plan = plan_eval(
        _settings(root), backend, EvalOptions(no_send_logs=no_send_logs), SilentProgress(), lambda _: None
    )
    assert plan.backend == "elsewhere" and len(plan.rows) == 4
    assert plan.send_logs is logged
    assert (plan.project_id, backend.project_ids) == (
        ("project-elsewhere", [PROJECT]) if logged else (None, [])
    )


def test_local_backend_names_the_local_datasets_when_one_is_missing(tmp_path: Path):
    root = seed_local_state(tmp_path / "state", make_rows(2))
    backend = LocalBackend(_settings(root))
    assert len(backend.dataset_rows(PROJECT, DATASET, must_exist=True)) == 2
    with pytest.raises(NotFoundError, match="no local dataset 'nope'") as caught:
        backend.dataset_rows(PROJECT, "nope", must_exist=True)
    assert f"{PROJECT}/{DATASET} (2 rows)" in (caught.value.hint or "")
    assert backend.dataset_rows(PROJECT, "nope") == []  # eval says "has no rows" itself
