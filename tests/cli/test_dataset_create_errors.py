"""Bad input to `facetopt dataset create`: one `error:` line, a hint, exit 1 (2 for usage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.dataset_helpers import SMALL, create_args, run_cli


def _assert_one_error(result, *needles: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert any(line.startswith("hint: ") for line in lines)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_missing_dataset_names_flag_and_variable(tmp_path: Path) -> None:
    result = run_cli("dataset", "create", "--target-project", "T", "--output-root", str(tmp_path))
    _assert_one_error(result, "--dataset")
    assert "FACET_OPTIMIZER_DATASET" in result.stderr


def test_missing_source_file(tmp_path: Path) -> None:
    result = run_cli(*create_args(tmp_path, "--source-file", str(tmp_path / "nope.jsonl")))
    _assert_one_error(result, "nope.jsonl")


def test_empty_source_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _assert_one_error(run_cli(*create_args(tmp_path, "--source-file", str(empty))))


@pytest.mark.parametrize("fraction", ["1", "1.5", "-0.1"])
def test_validation_fraction_outside_range(tmp_path: Path, fraction: str) -> None:
    _assert_one_error(
        run_cli(*create_args(tmp_path, "--validation-fraction", fraction)), "--validation-fraction"
    )


def test_negative_limit(tmp_path: Path) -> None:
    _assert_one_error(
        run_cli(*create_args(tmp_path, "--positive-limit", "-1")),
        "--positive-limit must be a whole number, 0 or more",
    )


def test_missing_root_span_id_file(tmp_path: Path) -> None:
    _assert_one_error(
        run_cli(*create_args(tmp_path, "--root-span-id-file", str(tmp_path / "ids.txt"))), "ids.txt"
    )


def test_invalid_extra_where_sql(tmp_path: Path) -> None:
    result = run_cli(*create_args(tmp_path, *SMALL, "--extra-where-sql", "metadata.model = = 'x'"))
    _assert_one_error(result)


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(*create_args(tmp_path, "--no-such-flag"))
    assert result.exit_code == 2


def test_json_error_envelope_on_stdout(tmp_path: Path) -> None:
    result = run_cli(*create_args(tmp_path, "--validation-fraction", "2", "--json"))
    envelope = json.loads(result.stdout)
    assert envelope["error"]["exit_code"] == 1
    assert "--validation-fraction" in envelope["error"]["message"]
    assert envelope["error"]["hint"]


@pytest.mark.slow
def test_unreachable_model_endpoint(tmp_path: Path) -> None:
    result = run_cli(
        *create_args(
            tmp_path,
            "--positive-limit",
            "1",
            "--negative-limit",
            "1",
            "--ground-truth-api-base",
            "http://127.0.0.1:9/v1",
        ),
        env={
            "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": "sk-unreachable-secret",
            "FACET_OPTIMIZER_REQUEST_TIMEOUT": "2",
        },
    )
    _assert_one_error(result, "unreachable")
    assert "sk-unreachable-secret" not in result.stderr + result.stdout
