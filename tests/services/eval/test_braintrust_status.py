"""A real eval against the loopback Braintrust (the SDK's own runner, simulated models): the
experiment carries `facetopt_status` "running" until facetopt records its end, then the run's
status; an eval whose every model call failed is `failed` in the registry and in Braintrust, and its
rows read back from Braintrust as errors."""

from __future__ import annotations

import pytest

from facetopt.clients.braintrust import connect, upload_rows
from facetopt.clients.prompt_file import write_new_prompt_file
from facetopt.errors import EvalRunError
from facetopt.services.backends.braintrust_experiments import record_from_experiment
from facetopt.services.eval.run import EvalOptions, run_eval
from facetopt.services.experiments.inspect import inspect_failures, inspect_metrics
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.progress import SilentProgress
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services.eval.helpers import DATASET, FACETS, PROJECT, make_rows, path_without_bt

pytestmark = pytest.mark.slow

ROWS = 4


@pytest.fixture
def braintrust(tmp_path, monkeypatch):
    root = tmp_path / "state"
    root.mkdir()
    write_new_prompt_file(root / "facet_definitions.yaml", FACETS)
    with FakeBraintrust() as fake:
        for name, value in {
            "BRAINTRUST_API_KEY": fake.api_key,
            "BRAINTRUST_APP_URL": fake.url,
            "BRAINTRUST_DISABLE_ATEXIT_FLUSH": "1",
            "FACETOPT_BT_RETRY_BACKOFF": "0",
            "PATH": path_without_bt(),
        }.items():
            monkeypatch.setenv(name, value)
        upload_rows(connect(fake.api_key, app_url=fake.url), PROJECT, DATASET, make_rows(ROWS))
        yield fake, root


def _settings(root):
    return load_settings(
        None,
        output_root=root,
        target_project=PROJECT,
        dataset=DATASET,
        api_base="simulated://",
        judge_api_base="simulated://",
    )


def _eval(root):
    return run_eval(
        _settings(root), options=EvalOptions(), progress=SilentProgress(), announce=print, warn=print
    )


def test_status_in_braintrust_and_errors_read_back(braintrust, monkeypatch):
    fake, root = braintrust
    good = _eval(root)
    metadata = fake._store.experiments[good.experiment_id]["metadata"]
    assert metadata["facetopt_status"] == "complete" and metadata["facetopt_status_cause"] is None
    # the PATCH came after the runner created the experiment as running
    (created,) = [r for r in fake.requests_to("/v1/experiment", "POST")]
    assert created.body["metadata"]["facetopt_status"] == "running"

    monkeypatch.setenv("FACETOPT_SIMULATED_FAIL", "User: ticket")  # in every row's text
    with pytest.raises(EvalRunError):
        _eval(root)
    failed_id = next(i for i in fake._store.experiments if i != good.experiment_id)
    listed = record_from_experiment(fake._store.experiments[failed_id], PROJECT)
    assert listed.status == "failed" and listed.status_cause.startswith(f"every row failed ({ROWS} rows)")

    with open_experiments(_settings(root)) as experiments:
        latest = experiments.resolve("latest")
        metrics = inspect_metrics(experiments, failed_id)
        failures = inspect_failures(experiments, failed_id, "Issues", split="all")
    assert latest.experiment_id == good.experiment_id
    overall = metrics.metrics[-1]
    assert (overall.n, overall.errored) == (ROWS, ROWS)  # read from Braintrust, not the store
    assert failures.counts["error"] == failures.rows == ROWS // 2
    assert all("FACETOPT_SIMULATED_FAIL" in (f.error or "") for f in failures.failures)
