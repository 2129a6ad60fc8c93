"""No API key leaks: not on stdout or stderr, not in any file facetopt writes, not on the runner's
command line, not in what is logged to Braintrust; yet every key reaches the server it is for.

One braintrust-backend loop through the CLI, each command in its own process (so whatever a
library prints or logs is captured too): `dataset create` against the fake Braintrust and a fake
labeller, `bootstrap`, then `eval` through the stand-in `bt` against a fake facet model and judge.
Each model server answers its first request with an error that echoes the caller's key, as some
providers do, so the error paths (failed rows, eval errors, runner logs) are exercised as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.braintrust_setup import sample_spans
from tests.fakes.bt_standin import bt_calls, install_bt
from tests.fakes.openai_server import Failure, FakeOpenAIServer
from tests.services.eval.helpers import path_without_bt

pytestmark = pytest.mark.slow

BRAINTRUST_KEY = "sk-bt-LEAKCHECK-3f9a0c7e51d2"
LABELLER_KEY = "sk-gt-LEAKCHECK-8b1e6d4a90c3"
MODEL_KEY = "sk-fm-LEAKCHECK-5c2f7a9e13b8"
JUDGE_KEY = "sk-judge-LEAKCHECK-0d4b8e2f6a71"
KEYS = [BRAINTRUST_KEY, LABELLER_KEY, MODEL_KEY, JUDGE_KEY]
ECHO = "quota exceeded for key"
SOURCE, TARGET, DATASET = "support-bot-prod", "facet-optimizer", "facet-groundtruth"
_ISOLATED = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_", "BT_", "FACETOPT_")


def _leaks(text: str) -> list[str]:
    """Keys found in `text`, whole or by their distinctive tail (a truncated key is still a leak)."""
    return [key for key in KEYS if key in text or key[-12:] in text]


def _around_leak(text: str) -> str:
    """The text around the first leaked key, for the failure message."""
    at = min(i for key in KEYS for i in (text.find(key), text.find(key[-12:])) if i >= 0)
    return repr(text[max(0, at - 160) : at + 40])


def _echoing(key: str) -> list[Failure]:
    return [Failure(400, message=f"{ECHO} {key}; see your plan")]


@dataclass
class Loop:
    tmp: Path
    root: Path
    bin_dir: Path
    outputs: dict[str, subprocess.CompletedProcess]
    braintrust: FakeBraintrust
    labeller: FakeOpenAIServer
    model: FakeOpenAIServer
    judge: FakeOpenAIServer


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    tmp = tmp_path_factory.mktemp("secrets")
    root = tmp / "state"
    bin_dir = tmp / "bin"
    install_bt(bin_dir)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED)}
    outputs: dict[str, subprocess.CompletedProcess] = {}
    with (
        FakeBraintrust(keys={BRAINTRUST_KEY: ["acme"]}) as braintrust,
        FakeOpenAIServer(api_key=LABELLER_KEY, script=_echoing(LABELLER_KEY)) as labeller,
        FakeOpenAIServer(api_key=MODEL_KEY, script=_echoing(MODEL_KEY)) as model,
        FakeOpenAIServer(api_key=JUDGE_KEY, script=_echoing(JUDGE_KEY)) as judge,
    ):
        braintrust.add_spans(braintrust.create_project(SOURCE)["id"], sample_spans(tmp / "sample"))
        env = {
            **base_env,
            "PATH": f"{bin_dir}{os.pathsep}{path_without_bt()}",
            "BRAINTRUST_DISABLE_ATEXIT_FLUSH": "1",
            "BRAINTRUST_APP_URL": braintrust.url,
            "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
            "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": LABELLER_KEY,
            "FACET_OPTIMIZER_API_KEY": MODEL_KEY,
            "FACET_OPTIMIZER_JUDGE_API_KEY": JUDGE_KEY,
            "FACET_OPTIMIZER_OUTPUT_ROOT": str(root),
            "FACET_OPTIMIZER_TARGET_PROJECT": TARGET,
            "FACET_OPTIMIZER_DATASET": DATASET,
        }
        commands = {
            "create": ["dataset", "create", "--backend", "braintrust", "--source-project", SOURCE]
            + ["--ground-truth-api-base", labeller.url, "--positive-limit", "3", "--negative-limit", "3"],
            "bootstrap": ["bootstrap"],
            "eval": [
                "eval",
                "--backend",
                "braintrust",
                "--api-base",
                model.url,
                "--judge-api-base",
                judge.url,
            ],
        }
        for name, args in commands.items():
            outputs[name] = subprocess.run(
                [sys.executable, "-m", "facetopt.cli", *args, "--json"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert outputs[name].returncode == 0, f"{name}: {outputs[name].stderr}"
    return Loop(tmp, root, bin_dir, outputs, braintrust, labeller, model, judge)


def _file_texts(folder: Path) -> dict[str, str]:
    """Every file under `folder` as text; DuckDB files also as the text of every table's rows
    (DuckDB compresses strings, so a key in a table need not appear in the file's bytes)."""
    import duckdb

    texts = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".duckdb":
            with duckdb.connect(str(path), read_only=True) as conn:
                tables = conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
                dumped = [repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for (t,) in tables]
            texts[f"{path} (tables)"] = "\n".join(dumped)
    return texts


def test_every_key_reached_its_server(loop: Loop):
    for server, key in ((loop.labeller, LABELLER_KEY), (loop.model, MODEL_KEY), (loop.judge, JUDGE_KEY)):
        assert server.requests and all(r.authorization == f"Bearer {key}" for r in server.requests)
    braintrust_auth = {r.headers.get("Authorization") for r in loop.braintrust.requests_to("/btql")}
    assert braintrust_auth == {f"Bearer {BRAINTRUST_KEY}"}
    assert loop.braintrust.requests_to("/logs3", "POST"), "the eval logs its experiment to Braintrust"


def test_the_echoed_errors_were_reported(loop: Loop):
    created = json.loads(loop.outputs["create"].stdout)
    assert len(created["failed_rows"]) == 1 and ECHO in created["failed_rows"][0]["reason"]
    ran = json.loads(loop.outputs["eval"].stdout)
    assert ran["errors"] == 1 and ran["rows"] == created["counts"]["dataset_rows"]


def test_no_key_on_stdout_or_stderr(loop: Loop):
    for name, result in loop.outputs.items():
        for stream in ("stdout", "stderr"):
            text = getattr(result, stream)
            found = _leaks(text)
            assert not found, f"`{name}` {stream} shows {found}: {_around_leak(text)}"


def test_no_key_in_any_file_written(loop: Loop):
    texts = _file_texts(loop.tmp)
    assert any(path.endswith("results.jsonl") for path in texts) and any("store.duckdb" in p for p in texts)
    leaked = [
        f"{path}: {_leaks(text)} in {_around_leak(text)}" for path, text in texts.items() if _leaks(text)
    ]
    assert not leaked, "\n".join(leaked)


def test_no_key_on_the_runners_command_line(loop: Loop):
    (call,) = bt_calls(loop.bin_dir)
    assert call["argv"][0] == "eval" and not _leaks(" ".join(call["argv"]))
    assert "BRAINTRUST_API_KEY" in call["env_names"], "keys travel in the runner's environment"


def test_no_key_in_what_is_sent_to_braintrust_or_the_models(loop: Loop):
    bodies = [
        (f"Braintrust {r.path}", r.raw.decode("utf-8", errors="replace")) for r in loop.braintrust.requests
    ]
    for server in (loop.labeller, loop.model, loop.judge):
        bodies += [(f"model server {r.path}", json.dumps(r.body)) for r in server.requests]
    leaked = [f"{where}: {_leaks(body)} in {_around_leak(body)}" for where, body in bodies if _leaks(body)]
    assert not leaked, "\n".join(leaked)
