"""Commands run with credentials in base URLs and a Braintrust key: no credential reaches a file they
write, and the Braintrust key reaches no model server that is not Braintrust's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import FakeOpenAIServer
from tests.services.eval.helpers import DATASET, PROJECT, make_rows, path_without_bt, seed_local_state

pytestmark = pytest.mark.slow

BT_KEY = "sk-bt-org-key-31337-abcdef"
URL_PASSWORD = "sk-in-the-url-424242"


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://gateway:{URL_PASSWORD}@")


def _every_file(*roots: Path) -> dict[Path, str]:
    return {
        path: path.read_bytes().decode("utf-8", errors="replace")
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
    }


def _assert_no_credential(files: dict[Path, str], *outputs: str) -> None:
    for secret in (BT_KEY, URL_PASSWORD):
        leaked = [str(path) for path, text in files.items() if secret in text]
        assert leaked == [], f"{secret} written to {leaked}"
        assert all(secret not in output for output in outputs)


def test_dataset_create_and_eval_keep_url_credentials_and_the_braintrust_key_out_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", path_without_bt())
    monkeypatch.setenv("BRAINTRUST_API_KEY", BT_KEY)
    with FakeOpenAIServer(accept_basic=True) as labeller:
        result = run_cli(
            *create_args(tmp_path / "created", "--positive-limit", "3", "--negative-limit", "3"),
            "--backend",
            "local",
            "--json",
            env={"FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": _with_credentials(labeller.url)},
        )
        summary = json_out(result)
        label_auth = [r.authorization or "" for r in labeller.requests]
    assert summary["labels_paid"] > 0 and summary["simulated_roles"] == []
    assert label_auth and all(BT_KEY not in a and a.startswith("Basic ") for a in label_auth)
    said = [w for w in summary["warnings"] if "set FACET_OPTIMIZER_GROUND_TRUTH_API_KEY" in w]
    assert len(said) == 1 and "BRAINTRUST_API_KEY is not sent" in said[0], summary["warnings"]
    create_outputs = (result.stdout, result.stderr)

    root = seed_local_state(tmp_path / "eval-state", make_rows(8))
    with FakeOpenAIServer(accept_basic=True) as model, FakeOpenAIServer(accept_basic=True) as judge:
        result = run_cli(
            "eval",
            "--target-project",
            PROJECT,
            "--dataset",
            DATASET,
            "--output-root",
            str(root),
            "--backend",
            "local",
            "--no-send-logs",
            "--api-base",
            _with_credentials(model.url),
            "--judge-api-base",
            _with_credentials(judge.url),
            "--json",
        )
        eval_summary = json_out(result)
        sent = [r.authorization or "" for r in model.requests + judge.requests]
    assert eval_summary["errors"] == 0 and eval_summary["factuality_errors"] == 0
    assert sent and all(BT_KEY not in a for a in sent)
    # the runner reached the servers with the URLs' credentials, which config.json does not hold
    assert all(a.startswith("Basic ") for a in sent)
    config = next(root.glob("evals/*/config.json")).read_text()
    assert model.url.replace("/v1", "") in config and "gateway" not in config
    _assert_no_credential(_every_file(tmp_path), *create_outputs, result.stdout, result.stderr)
