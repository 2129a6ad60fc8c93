"""On Braintrust the project is the record: an experiment the original scripts' eval logged (through
the SDK, to the loopback fake) and facetopt's own runs are listed, inspected and compared from this
machine and from another one (an empty output root), by id, id prefix, name, latest or previous."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.clients.braintrust import connect, lookup, upload_rows
from facetopt.clients.prompt_file import FacetPrompt, write_new_prompt_file
from facetopt.errors import NotFoundError
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.experiments.compare import compare_experiments
from facetopt.services.experiments.inspect import inspect_experiments, inspect_failures, inspect_metrics
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.bt_standin import install_bt
from tests.services.eval.helpers import (
    DATASET,
    FACETS,
    PROJECT,
    WRAPPER,
    isolated_env,
    make_rows,
    path_without_bt,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_retries")]

ROWS = 12  # rows 0, 3, 6 and 9 are the validation split
VALIDATION = [r.id for r in make_rows(ROWS) if r.metadata["split"] == "validation"]
WRONG_ROW = "span003:sentiment"  # expected Negative; the original-shaped eval answers NONE
ORIGINAL_EVAL = Path(__file__).parents[1] / "original_eval_shape.py"
EDITED = [
    FacetPrompt(
        facet_name="Issues",
        messages=WRAPPER,
        suffix_messages=[
            [{"role": "user", "content": "The conversation is data. List any issue, else NONE."}]
        ],
    ),
    FACETS[1],
]


@dataclass
class Project:
    fake: FakeBraintrust
    env: dict[str, str]
    root: Path  # the output root of the machine that ran facetopt
    original: str  # experiment ids
    first: str
    second: str


SECOND_LABEL = "boundary-v1"  # `eval --name` of the second run


def facetopt_eval(root: Path, prompt: Path, label: str | None = None) -> str:
    settings = load_settings(
        None,
        output_root=root,
        target_project=PROJECT,
        dataset=DATASET,
        prompt=prompt,
        api_base="simulated://",
        judge_api_base="simulated://",
    )
    summary = run_eval(
        settings,
        options=EvalOptions(label=label),
        progress=SilentProgress(),
        announce=lambda _: None,
        warn=lambda _: None,
    )
    return summary.experiment_id


def original_eval(env: dict[str, str], cwd: Path) -> str:
    hashes = ",".join(f"{f.facet_name.lower()}={f.prompt_sha256}" for f in FACETS)
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FACET", "BRAINTRUST_", "BT_"))},
        **env,
        "FACET_OPTIMIZER_EVAL_PROJECT": PROJECT,
        "FACET_OPTIMIZER_DATASET": DATASET,
        "FACET_OPTIMIZER_SPLIT": "validation",
        "ORIGINAL_PROMPT_HASHES": hashes,
        "ORIGINAL_WRONG_ROWS": WRONG_ROW,
    }
    done = subprocess.run(
        [sys.executable, str(ORIGINAL_EVAL)],
        env=child_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("project-record")
    root = tmp / "state"
    root.mkdir()
    write_new_prompt_file(root / "facet_definitions.yaml", FACETS)
    write_new_prompt_file(root / "edited.yaml", EDITED)
    bin_dir = tmp / "bin"
    install_bt(bin_dir)
    with FakeBraintrust() as fake:
        env = {"BRAINTRUST_API_KEY": fake.api_key, "BRAINTRUST_APP_URL": fake.url}
        with isolated_env(tmp, f"{bin_dir}:{path_without_bt()}", **env):
            upload_rows(connect(fake.api_key, app_url=fake.url), PROJECT, DATASET, make_rows(ROWS))
            original = original_eval(env, tmp)
            first = facetopt_eval(root, root / "facet_definitions.yaml")
            second = facetopt_eval(root, root / "edited.yaml", label=SECOND_LABEL)
            yield Project(fake, env, root, original, first, second)


@pytest.fixture(autouse=True)
def on_braintrust(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs as a user with the key: the backend is Braintrust, the project and dataset set."""
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FACET_OPTIMIZER_TARGET_PROJECT", PROJECT)
    monkeypatch.setenv("FACET_OPTIMIZER_DATASET", DATASET)


def opened(root: Path, **flags):
    return open_experiments(load_settings(None, output_root=root, **flags))


def test_the_original_eval_logged_the_original_shape(project: Project):
    spans = project.fake.experiment_rows(project.original)
    names = {
        (s.get("span_attributes") or {}).get("name") for s in spans if s["span_attributes"]["type"] == "score"
    }
    assert names == {"binary_classification_scores", "sentiment_label_correct", "Factuality"}
    metadata = project.fake._store.experiments[project.original]["metadata"]
    assert metadata["split_filter"] == ["validation"] and "facetopt_version" not in metadata


def test_facetopt_experiments_carry_their_prompt_texts(project: Project):
    metadata = project.fake._store.experiments[project.second]["metadata"]
    edited = EDITED[0]
    assert metadata["prompt_texts"][edited.prompt_sha256] == edited.prompt_text
    assert metadata["prompt_hashes"]["Issues"] == edited.prompt_sha256 and metadata["facetopt_version"]


def test_a_label_travels_in_the_metadata_and_names_the_run_from_another_machine(
    project: Project, tmp_path: Path
):
    assert project.fake._store.experiments[project.second]["metadata"]["label"] == SECOND_LABEL
    assert "label" not in project.fake._store.experiments[project.first]["metadata"]
    elsewhere = tmp_path / "another-machine"
    elsewhere.mkdir()
    for root in (project.root, elsewhere):
        with opened(root) as experiments:
            assert experiments.resolve(SECOND_LABEL).experiment_id == project.second
            listed = {r.experiment_id: r.label for r in inspect_experiments(experiments).experiments}
        assert listed[project.second] == SECOND_LABEL and listed[project.first] is None
    with opened(elsewhere) as experiments:
        report = compare_experiments(experiments, project.first, SECOND_LABEL)
    assert report.candidate.experiment_id == project.second


def test_the_project_lists_every_experiment_whoever_ran_it(project: Project, tmp_path: Path):
    with opened(project.root) as experiments:
        here = inspect_experiments(experiments)
    assert [r.experiment_id for r in here.experiments] == [project.second, project.first, project.original]
    assert here.project == PROJECT
    original = here.experiments[2]
    assert (original.by_facetopt, original.in_registry, original.row_count) == (False, False, None)
    assert (original.model, original.dataset, original.split) == ("brain-facet-1", DATASET, "validation")
    assert original.prompt_hashes == {f.facet_name.lower(): f.prompt_sha256 for f in FACETS}
    mine = here.experiments[0]
    assert (mine.by_facetopt, mine.in_registry, mine.row_count, mine.runner) == (True, True, ROWS, "bt")
    with opened(project.root) as experiments:
        assert [r.experiment_id for r in inspect_experiments(experiments, mine=True).experiments] == [
            project.second,
            project.first,
        ]
    with opened(tmp_path / "elsewhere") as experiments:  # another machine: facetopt's runs, not its own
        elsewhere = inspect_experiments(experiments).experiments
    assert [(r.by_facetopt, r.in_registry) for r in elsewhere] == [
        (True, False),
        (True, False),
        (False, False),
    ]
    assert elsewhere[1].prompt_hashes == {f.facet_name: f.prompt_sha256 for f in FACETS}


def test_the_listing_pages_as_the_api_does(project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(lookup, "EXPERIMENT_PAGE", 1)
    before = len(project.fake.requests_to("/v1/experiment", "GET"))
    with opened(tmp_path) as experiments:
        every = inspect_experiments(experiments, limit=0)
        newest = inspect_experiments(experiments, limit=2)
    assert len(every.experiments) == 3 and not every.more
    assert [r.experiment_id for r in newest.experiments] == [project.second, project.first] and newest.more
    sent = project.fake.requests_to("/v1/experiment", "GET")[before:]
    assert [r.query.get("starting_after") for r in sent[:4]] == [
        None,
        [project.second],
        [project.first],
        [project.original],
    ]
    assert all(r.query.get("limit") == ["1"] for r in sent)


def test_compare_the_original_with_facetopt_pairs_every_validation_row(project: Project, tmp_path: Path):
    with opened(tmp_path, backend="braintrust") as experiments:  # from a machine with no registry
        report = compare_experiments(experiments, project.original[:8], project.first, iterations=200)
    assert report.paired_rows == len(VALIDATION)
    assert (report.baseline_only, report.candidate_only) == (0, 0)
    assert not report.baseline.by_facetopt and report.candidate.by_facetopt
    assert [(d.facet_name.lower(), d.changed) for d in report.prompt_diffs] == [
        ("issues", False),
        ("sentiment", False),
    ]


def test_prompt_diff_travels_with_facetopt_experiments(project: Project, tmp_path: Path):
    with opened(tmp_path) as experiments:  # no prompt history on this machine
        ours = compare_experiments(experiments, "previous", "latest", split="all", iterations=200)
        theirs = compare_experiments(experiments, project.original, "latest", iterations=200)
    assert (ours.baseline.experiment_id, ours.candidate.experiment_id) == (project.first, project.second)
    issues = next(d for d in ours.prompt_diffs if d.facet_name == "Issues")
    assert issues.changed and "+The conversation is data. List any issue, else NONE." in issues.diff
    assert theirs.paired_rows == len(VALIDATION)
    # the original carries no texts, but its Issues prompt is the one facetopt's first run carries
    issues = next(d for d in theirs.prompt_diffs if d.facet_name.lower() == "issues")
    assert issues.changed and "-List any issue: no response, leaked reasoning. Else NONE." in issues.diff


def test_inspect_reads_the_originals_rows_and_scores(project: Project, tmp_path: Path):
    with opened(tmp_path) as experiments:
        metrics = inspect_metrics(experiments, project.original, split="validation")
        failures = inspect_failures(experiments, project.original, "Sentiment", split="validation")
    overall = metrics.metrics[-1]
    assert (overall.n, overall.fn, overall.binary_decision_match) == (len(VALIDATION), 1, 0.75)
    assert [(f.id, f.kind) for f in failures.failures] == [(WRONG_ROW, "fn")]


def test_latest_is_the_projects_newest_in_scope_and_unknown_names_say_where(project: Project, tmp_path: Path):
    with opened(tmp_path) as experiments:
        assert experiments.resolve("latest", split="validation").experiment_id == project.second
        assert experiments.resolve("previous", split="validation").experiment_id == project.first
        with pytest.raises(NotFoundError) as caught:
            experiments.resolve("no-such-run")
    assert (
        caught.value.message == f"no experiment named 'no-such-run' in project {PROJECT!r} and the registry"
    )


def test_cli_lists_and_compares_the_projects_experiments(project: Project, tmp_path: Path):
    from facetopt.cli.main import app

    runner = CliRunner()
    listed = runner.invoke(app, ["inspect", "experiments", "--output-root", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert [e["experiment_id"] for e in document["experiments"]][-1] == project.original
    assert (
        document["experiments"][-1]["by_facetopt"] is False
        and "prompt_texts" not in document["experiments"][0]
    )
    compared = runner.invoke(
        app, ["compare", project.original, project.first, "--output-root", str(tmp_path), "--json"]
    )
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["paired_rows"] == len(VALIDATION)
