"""`facetopt dataset upload`: a run's rows to Braintrust (the fake) or the local store, verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from tests.cli.dataset_helpers import SMALL, create_args, json_out, run_cli
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.braintrust_setup import braintrust_env

pytestmark = pytest.mark.usefixtures("fast_retries")

RUN_TARGET, RUN_DATASET = "Facet optimizer", "Facet groundtruth"  # what create_args names


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        yield server


@pytest.fixture
def local_run(output_root: Path) -> Path:
    """A finished run of the local backend (simulated labels)."""
    summary = json_out(run_cli(*create_args(output_root, *SMALL, "--backend", "local", "--json")))
    return Path(summary["run_dir"])


def run_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "dataset_rows.jsonl").read_text().splitlines()]


def as_real_labels(run_dir: Path) -> None:
    """Rewrite the run as if a real model had labelled it."""
    rows = run_rows(run_dir)
    for row in rows:
        row["metadata"]["ground_truth_model"] = "gpt-5.4"
    (run_dir / "dataset_rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def upload(*args: str, env: dict[str, str] | None = None):
    return run_cli("dataset", "upload", *args, env=env)


@pytest.mark.slow
def test_simulated_labels_are_refused_unless_allowed(fake, local_run):
    env = braintrust_env(fake)
    rows = run_rows(local_run)

    refused = upload("--run-dir", str(local_run), env=env)

    assert refused.exit_code == 1
    n = len(rows)
    assert (
        f"error: {n} of {n} rows in {local_run / 'dataset_rows.jsonl'} have SIMULATED labels"
        in refused.stderr
    )
    assert "--allow-simulated" in refused.stderr
    assert not fake.requests_to("/logs3")

    allowed = upload("--run-dir", str(local_run), "--allow-simulated", "--json", env=env)

    assert allowed.exit_code == 0, allowed.stderr
    report = json_out(allowed)
    assert (report["written"], report["verified"], report["simulated_rows"]) == (n, n, n)
    assert any("SIMULATED" in w for w in report["warnings"])


@pytest.mark.slow
def test_a_local_run_is_promoted_to_braintrust_with_the_runs_names(fake, local_run):
    as_real_labels(local_run)
    rows = run_rows(local_run)

    result = upload("--run-dir", str(local_run), env=braintrust_env(fake))

    assert result.exit_code == 0, result.stderr
    assert f"{len(rows)} written, {len(rows)} verified by reading back" in " ".join(result.stdout.split())
    project = fake.create_project(RUN_TARGET)  # the one the upload created
    stored = fake.dataset_rows(fake.find_dataset(project["id"], RUN_DATASET)["id"])
    assert {r["id"]: (r["expected"], r["metadata"]["split"]) for r in stored} == {
        r["id"]: (r["expected"], r["metadata"]["split"]) for r in rows
    }


@pytest.mark.slow
def test_target_org_project_and_dataset_can_be_overridden(local_run):
    as_real_labels(local_run)
    key = "sk-two-orgs-000077"
    with FakeBraintrust(keys={key: ["acme-prod", "acme-ml"]}) as fake:
        result = upload(
            "--run-dir", str(local_run), "--target-org", "acme-ml", "--target-project", "ml-datasets",
            "--dataset", "facets-v2", "--json", env=braintrust_env(fake, key=key),
        )  # fmt: skip

        assert result.exit_code == 0, result.stderr
        report = json_out(result)
        assert (report["target_org"], report["target_project"], report["dataset"]) == (
            "acme-ml", "ml-datasets", "facets-v2",
        )  # fmt: skip
        dataset = fake.find_dataset(fake.create_project("ml-datasets", org="acme-ml")["id"], "facets-v2")
        assert len(fake.dataset_rows(dataset["id"])) == report["verified"] == len(run_rows(local_run))


@pytest.mark.slow
def test_upload_failure_names_the_missing_rows_and_keeps_the_file(fake, local_run):
    as_real_labels(local_run)
    fake.fail_logs3(times=None)

    result = upload("--run-dir", str(local_run), env=braintrust_env(fake))

    n = len(run_rows(local_run))
    assert result.exit_code == 1
    assert f"error: {n} of {n} rows did not arrive in Braintrust dataset '{RUN_DATASET}'" in result.stderr
    assert f"the rows are still in {local_run / 'dataset_rows.jsonl'}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_local_backend_upload_by_run_id(local_run, output_root):
    result = upload(
        "--run-dir", local_run.name, "--output-root", str(output_root), "--backend", "local",
        "--dataset", "copy", "--allow-simulated", "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert json_out(result)["verified"] == len(run_rows(local_run))
    with LocalStore(output_root / "store.duckdb", read_only=True) as store:
        copied = store.read_rows(RUN_TARGET, "copy")
    assert sorted(r.id for r in copied) == sorted(r["id"] for r in run_rows(local_run))


def test_missing_run_folder(tmp_path):
    result = upload("--run-dir", str(tmp_path / "nope"), "--backend", "local")

    assert result.exit_code == 1
    assert f"error: run folder not found: {tmp_path / 'nope'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_folder_has_no_rows_to_upload(output_root):
    dry = json_out(run_cli(*create_args(output_root, *SMALL, "--backend", "local", "--dry-run", "--json")))

    result = upload("--run-dir", dry["run_dir"], "--backend", "local", "--json")

    assert result.exit_code == 1
    assert f"error: no dataset_rows.jsonl in {dry['run_dir']}" in result.stderr
    assert json.loads(result.stdout)["error"]["hint"].endswith("without --dry-run")


@pytest.mark.slow
def test_a_damaged_rows_file_names_the_line(local_run):
    with (local_run / "dataset_rows.jsonl").open("a") as handle:
        handle.write('{"id": "half a row"\n')

    result = upload("--run-dir", str(local_run), "--backend", "local", "--allow-simulated")

    assert result.exit_code == 1
    assert f"line {len(run_rows_text(local_run))} is not a dataset row" in result.stderr


def run_rows_text(run_dir: Path) -> list[str]:
    return (run_dir / "dataset_rows.jsonl").read_text().splitlines()
