"""`facetopt dataset create --backend braintrust` against the loopback fake, through the CLI."""

from __future__ import annotations

import json
import shlex
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.dataset_helpers import json_out, run_cli
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.braintrust_setup import braintrust_env, sample_spans

pytestmark = pytest.mark.usefixtures("fast_retries")

SOURCE, TARGET, DATASET = "checkout-assistant", "facet-datasets", "facet-groundtruth"
# metadata that names where the source lives: it differs between backends by design
PLACE_KEYS = {"source_project_id", "source_org", "source_trace_permalink", "ground_truth_generated_at"}


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        yield server


def create(root: Path, *extra: str, env: dict[str, str] | None = None):
    return run_cli(
        "dataset", "create", "--source-project", SOURCE, "--target-project", TARGET,
        "--dataset", DATASET, "--output-root", str(root), *extra, env=env,
    )  # fmt: skip


def rows_of(summary: dict) -> list[dict]:
    path = Path(summary["run_dir"]) / "dataset_rows.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def comparable(row: dict) -> dict:
    metadata = {k: v for k, v in row["metadata"].items() if k not in PLACE_KEYS}
    created = datetime.fromisoformat(metadata.pop("source_created").replace("Z", "+00:00"))
    return {**row, "metadata": metadata, "created": created}


def sent_sql(fake: FakeBraintrust) -> list[str]:
    return [r.body["query"] for r in fake.requests_to("/btql")]


def facet_spans(n: int, per_trace: int = 1) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "id": f"span-{i:05d}",
            "root_span_id": f"trace-{i // per_trace:05d}",
            "created": (now - timedelta(hours=2, seconds=i // 3)).isoformat(),
            "span_attributes": {"type": "llm"},
            "metadata": {"model": "brain-facet-1", "facet_name": "task"},
            "input": [
                {"role": "system", "content": "Extract the task."},
                {"role": "user", "content": f"Here is the data to analyze: user {i} wants a refund"},
            ],
            "output": "User wants a refund",
        }
        for i in range(n)
    ]


@pytest.mark.slow
def test_same_rows_splits_and_report_as_the_local_backend(fake, tmp_path):
    spans = sample_spans(tmp_path / "sample")
    fake.add_spans(fake.create_project(SOURCE)["id"], spans)
    root = tmp_path / "state"

    limits = ("--positive-limit", "40", "--negative-limit", "40", "--json")
    local = json_out(create(root, "--backend", "local", "--source-file", str(tmp_path / "sample"), *limits))
    remote_run = create(root, "--backend", "braintrust", *limits, env=braintrust_env(fake))

    assert remote_run.exit_code == 0, remote_run.stderr
    remote = json_out(remote_run)
    assert remote["counts"]["dataset_rows"] == local["counts"]["dataset_rows"] > 100
    assert [comparable(r) for r in rows_of(remote)] == [comparable(r) for r in rows_of(local)]
    assert {**remote["balance"], "backend": "local"} == local["balance"]
    # every row arrived and says where it came from
    assert remote["counts"]["uploaded_rows"] == remote["counts"]["dataset_rows"]
    dataset = fake.find_dataset(fake.create_project(TARGET)["id"], DATASET)
    stored = {r["id"]: r["expected"] for r in fake.dataset_rows(dataset["id"])}
    assert stored == {r["id"]: r["expected"] for r in rows_of(remote)}
    first = rows_of(remote)[0]["metadata"]
    assert first["source_org"] == "fake-org"
    assert first["source_trace_permalink"].startswith(
        f"{fake.url}/app/fake-org/object?object_type=project_logs"
    )
    # the artifacts hold exactly the SQL that was sent
    run_dir = Path(remote["run_dir"])
    queries = sent_sql(fake)
    facet_queries = [q for q in queries if "facets IS NOT NULL" in q]
    assert (run_dir / "query.sql").read_text() == queries[0] + "\n"
    assert (run_dir / "facets_query.sql").read_text() == ";\n\n".join(facet_queries) + "\n"
    traces = {json.loads(line)["root_span_id"] for line in (run_dir / "parsed_calls.jsonl").open()}
    assert len(facet_queries) == -(-len(traces) // 100) > 1


@pytest.mark.slow
def test_rerun_updates_rows_instead_of_adding_them(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(30))
    env = braintrust_env(fake)

    first = json_out(create(tmp_path, "--json", env=env))
    second = json_out(create(tmp_path, "--json", env=env))

    dataset = fake.find_dataset(fake.create_project(TARGET)["id"], DATASET)
    assert len(fake.dataset_rows(dataset["id"])) == first["counts"]["dataset_rows"] == 30
    assert second["counts"]["uploaded_rows"] == 30 and second["labels_paid"] == 0
    assert second["counts"]["dataset_total_rows"] == 30 and second["counts"]["rows_from_earlier_runs"] == 30


@pytest.mark.slow
def test_reads_2500_spans_across_pages_and_dry_run_writes_nothing(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(2500, per_trace=25))
    env = {**braintrust_env(fake), "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": ""}

    result = create(tmp_path, "--limit", "3000", "--dry-run", "--json", env=env)

    assert result.exit_code == 0, result.stderr
    summary = json_out(result)
    assert summary["counts"]["candidates"] == 2500 and summary["counts"]["parsed_calls"] == 2500
    candidate_queries = [q for q in sent_sql(fake) if "facets IS NOT NULL" not in q]
    assert len(candidate_queries) == 3
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "query.sql").read_text() == ";\n\n".join(candidate_queries) + "\n"
    assert len({json.loads(line)["id"] for line in (run_dir / "candidates.jsonl").open()}) == 2500
    # no model call, nothing written, and labels would go to the proxy named by the login
    assert not (run_dir / "dataset_rows.jsonl").exists()
    assert not any(
        r.method == "POST" and r.path in ("/logs3", "/v1/project", "/v1/dataset") for r in fake.requests
    )
    assert summary["ground_truth_endpoint"] == f"{fake.url}/v1"


def test_skip_upload_keeps_rows_only_in_the_run_folder(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(12))

    summary = json_out(create(tmp_path, "--skip-upload", "--json", env=braintrust_env(fake)))

    assert summary["counts"] == {**summary["counts"], "dataset_rows": 12, "uploaded_rows": 0}
    assert any("--skip-upload" in w and "dataset upload --run-dir" in w for w in summary["warnings"])
    assert (
        not fake.requests_to("/logs3")
        and fake.find_dataset(fake.create_project(TARGET)["id"], DATASET) is None
    )


def test_logs3_failing_twice_then_succeeding_verifies_every_row(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(20))
    fake.fail_logs3(times=2)

    result = create(tmp_path, env=braintrust_env(fake))

    assert result.exit_code == 0, result.stderr
    report = " ".join(result.stdout.split())  # the table output wraps
    assert f"20 rows written, 20 verified in Braintrust dataset '{DATASET}' by reading back" in report
    assert len(fake.requests_to("/logs3", "POST")) == 3


@pytest.mark.slow
def test_logs3_failing_always_keeps_the_rows_and_dataset_upload_recovers(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(20))
    fake.fail_logs3(times=None)
    env = braintrust_env(fake)

    failed = create(tmp_path, env=env)

    assert failed.exit_code == 1
    assert "error: 20 of 20 rows did not arrive in Braintrust dataset" in failed.stderr
    assert "Traceback" not in failed.stderr
    run_dir = next(p for p in tmp_path.iterdir() if (p / "dataset_rows.jsonl").exists())
    assert f"facetopt dataset upload --run-dir {run_dir}`" in failed.stderr
    assert len((run_dir / "dataset_rows.jsonl").read_text().splitlines()) == 20
    assert json.loads((run_dir / "summary.json").read_text())["counts"]["uploaded_rows"] == 0

    fake.clear_faults()
    upload = run_cli("dataset", "upload", "--run-dir", str(run_dir), "--allow-simulated", "--json", env=env)

    assert upload.exit_code == 0, upload.stderr
    report = json_out(upload)
    assert (report["target_project"], report["dataset"]) == (TARGET, DATASET)
    assert (report["written"], report["verified"]) == (20, 20)
    # the labels paid before the failure were kept
    assert json_out(create(tmp_path, "--json", env=env))["labels_paid"] == 0


def test_rejected_key(fake, tmp_path):
    result = create(tmp_path, env=braintrust_env(fake, key="sk-wrong-key-987654321"))

    assert result.exit_code == 1
    assert "error: Braintrust rejected the API key (401)\nhint: check BRAINTRUST_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())  # nothing started
    assert "987654321" not in result.stderr + result.stdout


def test_missing_key_names_the_local_backend(tmp_path):
    result = create(tmp_path, "--backend", "braintrust")

    assert result.exit_code == 1
    assert "error: the braintrust backend needs a Braintrust API key" in result.stderr
    assert "BRAINTRUST_API_KEY" in result.stderr and "--backend local" in result.stderr


def test_unknown_source_project_offers_the_closest_names(fake, tmp_path):
    fake.create_project(SOURCE)

    result = run_cli(
        "dataset", "create", "--source-project", "checkout-asistant", "--target-project", TARGET,
        "--dataset", DATASET, "--output-root", str(tmp_path), env=braintrust_env(fake),
    )  # fmt: skip

    assert result.exit_code == 1
    assert (
        "error: Braintrust project 'checkout-asistant' not found in organization 'fake-org'" in result.stderr
    )
    assert "did you mean: 'checkout-assistant'?" in result.stderr


def test_unknown_org_lists_the_orgs_the_key_can_see(fake, tmp_path):
    result = create(tmp_path, "--source-org", "acme-typo", env=braintrust_env(fake))

    assert result.exit_code == 1
    assert (
        "error: Braintrust organization 'acme-typo' is not available to this API key; it can see: fake-org"
        in (result.stderr)
    )
    assert "--source-org" in result.stderr


def test_sql_error_in_extra_where_shows_the_servers_message(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(3))

    result = create(tmp_path, "--extra-where-sql", "metdata.user = 'x'", env=braintrust_env(fake))

    assert result.exit_code == 1
    assert "error: Braintrust rejected the SQL query (HTTP 400)" in result.stderr
    assert "unknown field 'metdata.user'" in result.stderr and "Traceback" not in result.stderr
    (query_file,) = tmp_path.glob("*/query.sql")
    assert query_file.read_text() == sent_sql(fake)[0] + "\n"
    assert "AND (metdata.user = 'x')" in query_file.read_text()


def test_server_errors_are_retried_then_reported(fake, tmp_path):
    fake.add_spans(fake.create_project(SOURCE)["id"], facet_spans(5))
    fake.rate_limit("/btql", times=2, retry_after=0)
    assert create(tmp_path, "--dry-run", env=braintrust_env(fake)).exit_code == 0

    fake.fail("/btql", 503, times=None)
    result = create(tmp_path, "--dry-run", env=braintrust_env(fake))

    assert result.exit_code == 1
    assert (
        "error: Braintrust kept failing on a SQL query: it answered HTTP 503 on all 4 attempts"
        in result.stderr
    )


def test_dead_api_url_is_named(fake, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"

    result = create(tmp_path, env={**braintrust_env(fake), "BRAINTRUST_API_URL": dead})

    assert result.exit_code == 1
    assert (
        f"error: the Braintrust API at {dead} refused the connection while looking up project"
        in result.stderr
    )
    assert "BRAINTRUST_API_URL" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_source_and_target_in_different_orgs(tmp_path):
    key = "sk-two-orgs-000042"
    with FakeBraintrust(keys={key: ["acme-prod", "acme-ml"]}) as fake:  # acme-prod is the default
        source = fake.create_project(SOURCE, org="acme-prod")
        fake.add_spans(source["id"], facet_spans(10))
        env = braintrust_env(fake, key=key)
        orgs = ("--source-org", "acme-prod", "--target-org", "acme-ml")

        summary = json_out(create(tmp_path, *orgs, "--json", env=env))

        target = fake.create_project(TARGET, org="acme-ml")  # the existing one, if the upload made it
        assert len(fake.dataset_rows(fake.find_dataset(target["id"], DATASET)["id"])) == 10
        assert summary["counts"]["uploaded_rows"] == 10
        metadata = rows_of(summary)[0]["metadata"]
        assert metadata["source_org"] == "acme-prod" and metadata["source_project_id"] == source["id"]
        assert "/app/acme-prod/object?" in metadata["source_trace_permalink"]

        # a failed upload names the command that sends the rows to the same org
        fake.fail_logs3(times=None)
        failed = create(tmp_path, *orgs, "--dataset", "second", env=env)
        command = failed.stderr.split("`")[1]
        assert failed.exit_code == 1 and "--target-org acme-ml" in command
        fake.clear_faults()

        recovered = run_cli(*shlex.split(command)[1:], "--allow-simulated", env=env)

        assert recovered.exit_code == 0, recovered.stderr
        assert len(fake.dataset_rows(fake.find_dataset(target["id"], "second")["id"])) == 10
