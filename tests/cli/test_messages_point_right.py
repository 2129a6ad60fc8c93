"""Messages that once pointed the wrong way now name what is wrong and where: each case is a user's
mistake and the exact thing the message must (and must not) say."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetopt.cli.main import app
from facetopt.cli.shared.output import user_side
from facetopt.clients.local.store_connection import _unusable
from facetopt.clients.prompt_file import write_new_prompt_file
from facetopt.clients.prompt_file.parse import parse_prompt_text
from facetopt.errors import PromptFileError
from tests.cli.test_bootstrap import make_run
from tests.services.eval.helpers import DATASET, FACETS, PROJECT, make_rows, seed_local_state

ISOLATED = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(ISOLATED):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_an_output_root_that_is_a_file_is_named_as_such(clean_env: Path):
    root = clean_env / "state"
    root.write_text("not a folder")
    result = invoke("inspect", "dataset", "--backend", "local", "--target-project", PROJECT,
                    "--dataset", DATASET, "--output-root", str(root))  # fmt: skip
    assert result.exit_code == 1
    assert f"--output-root {root} is a file, not a folder" in result.stderr
    assert "no local dataset" not in result.stderr


def test_eval_of_a_missing_dataset_lists_the_datasets_that_exist(clean_env: Path):
    root = clean_env / "state"
    seed_local_state(root, make_rows(6))
    result = invoke("eval", "--backend", "local", "--target-project", PROJECT, "--dataset", "nosuchds",
                    "--output-root", str(root), "--api-base", "simulated://")  # fmt: skip
    assert result.exit_code == 1
    assert "'nosuchds'" in result.stderr
    assert f"{PROJECT}/{DATASET} (6 rows)" in result.stderr  # the one that exists, with its size


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_rows_below_one_is_refused_alike(clean_env: Path, value: str):
    result = invoke("eval", "--max-rows", value, "--output-root", str(clean_env / "state"))
    assert result.exit_code == 2
    assert "Invalid value for '--max-rows'" in result.stderr
    assert not (clean_env / "state" / "evals").exists()  # nothing ran


def test_json_before_the_command_is_the_commands_json(clean_env: Path):
    root = clean_env / "state"
    seed_local_state(root, make_rows(6))
    where = [
        "--backend",
        "local",
        "--target-project",
        PROJECT,
        "--dataset",
        DATASET,
        "--output-root",
        str(root),
    ]
    before = invoke("--json", "inspect", "dataset", *where)
    after = invoke("inspect", "dataset", *where, "--json")
    assert before.exit_code == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)
    usage = invoke("--json", "eval", "--no-such-flag")
    assert usage.exit_code == 2
    assert json.loads(usage.stdout)["error"]["message"].startswith("No such option: --no-such-flag")


def test_bootstrap_promotes_the_newest_run_of_the_configured_dataset(clean_env: Path):
    root = clean_env / "state"
    mine = make_run(root, "20240101T000000Z", prompt="Mine: what does the user want? Answer none.")
    other = make_run(root, "20240202T000000Z", prompt="Theirs: a newer run of another dataset.")
    for run, dataset in ((mine, DATASET), (other, "other-dataset")):
        (run / "summary.json").write_text(json.dumps({"target_project": PROJECT, "dataset": dataset}))
    out = clean_env / "prompts.yaml"
    result = invoke("bootstrap", "--dataset", DATASET, "--output-root", str(root), "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == (mine / "facet_prompt.yaml").read_bytes()

    missing = invoke("bootstrap", "--dataset", "nosuch", "--output-root", str(root), "--output", str(out))
    assert missing.exit_code == 1
    assert "no run of dataset 'nosuch'" in missing.stderr
    assert f"{PROJECT}/{DATASET}" in missing.stderr and f"{PROJECT}/other-dataset" in missing.stderr


def test_a_yaml_error_names_the_line_that_lost_its_indentation(tmp_path: Path):
    path = tmp_path / "facet_definitions.yaml"
    write_new_prompt_file(path, FACETS)
    lines = path.read_text().splitlines()
    block = next(i for i, line in enumerate(lines) if line.rstrip().endswith("content: |-"))
    # a sentence added to the prompt text without its indentation, as an editor paste leaves it
    lines.insert(block + 2, "Return only the facet value.")
    with pytest.raises(PromptFileError) as caught:
        parse_prompt_text("\n".join(lines) + "\n", path)
    assert caught.value.message.startswith(f"{path}:{block + 3}: this line is less indented")
    assert f"at line {block + 1}" in caught.value.message
    assert "indent it" in caught.value.hint


def test_a_store_in_a_read_only_folder_names_the_folder_not_the_file(tmp_path: Path):
    folder = tmp_path / "locked"
    folder.mkdir()
    store = folder / "store.duckdb"
    error = _unusable(store, f'IO Error: Cannot open file "{store}": Permission denied')
    assert error is not None
    assert f"the folder {folder} is not writable" in error.message
    assert "aside" not in error.hint and "another --output-root" in error.hint
    # the file exists but its .wal cannot be created beside it: a write fails at commit
    later = user_side(RuntimeError(f'Failed to commit: Cannot open file "{store}.wal": Permission denied'))
    assert later is not None and later.message == f"cannot write {store}.wal: permission denied"
    assert str(folder) in later.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_real_read_only_folder(tmp_path: Path):
    from facetopt.clients.local.store import LocalStore
    from facetopt.errors import FacetoptError

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(FacetoptError) as caught, LocalStore(folder / "store.duckdb"):
            pass
        assert "is not writable" in caught.value.message
    finally:
        folder.chmod(0o755)


def test_dotenv_lines_that_do_not_parse_are_named_once_with_the_file(tmp_path: Path):
    (tmp_path / ".env").write_text("FACET_OPTIMIZER_MODEL=brain-facet-1\nthis is not a setting\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED)}
    done = subprocess.run(
        [sys.executable, "-m", "facetopt.cli", "inspect", "dataset", "--backend", "local",
         "--target-project", PROJECT, "--dataset", DATASET, "--output-root", "state"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    notices = [line for line in done.stderr.splitlines() if "line 2" in line]
    assert notices == ["warning: .env: line 2 not NAME=value; ignored"], done.stderr
    assert "python-dotenv" not in done.stderr


def test_json_without_a_command_says_where_it_goes(clean_env: Path):
    result = invoke("--json")
    assert result.exit_code == 2
    assert "--json goes with a command" in json.loads(result.stdout)["error"]["hint"]


def test_error_lines_wrap_at_a_terminal_and_stay_one_line_in_a_pipe(tmp_path: Path):
    import pty

    argv = [sys.executable, "-m", "facetopt.cli", "eval", "--backend", "local", "--target-project",
            PROJECT, "--dataset", "nosuchds", "--output-root", str(tmp_path / "state")]  # fmt: skip
    seed_local_state(tmp_path / "state", make_rows(6))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(ISOLATED)}, "COLUMNS": "40"}
    piped = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    error = next(line for line in piped.stderr.splitlines() if line.startswith("error: "))
    assert error == f"error: no local dataset 'nosuchds' in project '{PROJECT}'"  # whole, past 40
    leader, follower = pty.openpty()
    done = subprocess.run(
        argv, cwd=tmp_path, env=env, stderr=follower, stdout=subprocess.DEVNULL, timeout=120
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown.decode()).replace("\r", "")
    lines = [line for line in plain.splitlines() if line.strip()]
    assert done.returncode == 1
    assert all(len(line) <= 40 for line in lines), lines
    assert " ".join(" ".join(lines).split()).count("no local dataset 'nosuchds'") == 1
