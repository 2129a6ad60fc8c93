"""Issue 13: results that used to be silently wrong are errors (exit 1, `error:` naming the cause, a
`hint:`), and Typer's usage errors under --json are one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facetopt.clients.prompt_file import load_prompt_file
from facetopt.errors import PromptFileError
from tests.cli.dataset_helpers import SMALL, create_args, json_out, run_cli
from tests.cli.test_dataset_create_errors import _assert_one_error
from tests.fakes.openai_server import FakeOpenAIServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prompts"


def test_a_wrapper_without_the_placeholder_is_refused(tmp_path: Path) -> None:
    text = (FIXTURES / "single_facet.yaml").read_text()
    assert "preprocessed_text" in text
    path = tmp_path / "prompts.yaml"
    path.write_text(
        text.replace("{{preprocessed_text}}", "the conversation").replace("{{ preprocessed_text }}", "x")
    )
    with pytest.raises(PromptFileError) as caught:
        load_prompt_file(path)
    assert "{{preprocessed_text}}" in caught.value.message and "never" in caught.value.message
    assert caught.value.hint


def test_an_empty_root_span_id_file_is_not_every_trace(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# nothing yet\n\n")
    _assert_one_error(
        run_cli(*create_args(tmp_path / "s", *SMALL, "--root-span-id-file", str(ids))), "no root span id"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_compare_tolerance_must_be_a_finite_number(tmp_path: Path, value: str) -> None:
    result = run_cli("compare", "previous", "latest", "--tolerance", value, "--output-root", str(tmp_path))
    _assert_one_error(result, "--tolerance")


def test_a_dataset_create_in_which_every_label_failed_is_an_error_naming_the_cause(tmp_path: Path) -> None:
    with FakeOpenAIServer(api_key="sk-the-right-key") as server:
        result = run_cli(
            *create_args(tmp_path / "s", "--positive-limit", "2", "--negative-limit", "2", "--json"),
            env={
                "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url,
                "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": "sk-a-wrong-key",
            },
        )
    # every call refused: the run stops at the dead endpoint (docs/models.md#a-dead-endpoint-ends-the-run)
    _assert_one_error(result, "refusing every call", "HTTP 401: Incorrect API key provided")
    assert json.loads(result.stdout)["error"]["exit_code"] == 1
    assert "sk-a-wrong-key" not in result.stdout + result.stderr


def test_facet_name_over_spans_with_different_prompts_is_refused(tmp_path: Path) -> None:
    _assert_one_error(run_cli(*create_args(tmp_path / "s", *SMALL, "--facet-name", "issues")), "--facet-name")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_dataset_create_concurrency_must_be_at_least_one(tmp_path: Path, value: str) -> None:
    _assert_one_error(run_cli(*create_args(tmp_path / "s", *SMALL, "--concurrency", value)), "--concurrency")


def test_env_file_naming_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    _assert_one_error(run_cli(*create_args(tmp_path / "s", *SMALL, "--env-file", str(folder))), "directory")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "--no-such-flag", "--json"], "--no-such-flag"),
        (["eval", "--trials", "many", "--json"], "--trials"),
        (["compare", "latest", "--json"], "CANDIDATE".lower()),
        (["dataset", "create", "--json", "--positive-limit"], "--positive-limit"),
    ],
)
def test_usage_errors_under_json_are_one_json_document(args: list[str], needle: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    document = json.loads(result.stdout)  # the whole of stdout is one document
    assert set(document) == {"error"}
    assert document["error"]["exit_code"] == 2
    assert needle in document["error"]["message"].lower() or needle in document["error"]["message"]
    assert document["error"]["hint"]
    assert "╭" not in result.stdout + result.stderr


def test_usage_errors_without_json_keep_typers_format() -> None:
    result = run_cli("eval", "--no-such-flag")
    assert result.exit_code == 2 and result.stdout == ""
    assert "No such option" in result.stderr and "Usage:" in result.stderr


def test_dataset_create_summary_reports_failed_calls_beside_the_rest(tmp_path: Path) -> None:
    summary = json_out(run_cli(*create_args(tmp_path / "s", *SMALL, "--json")))
    assert (
        summary["label_calls"]
        == summary["labels_from_cache"] + summary["labels_paid"] + summary["labels_failed"]
    )
