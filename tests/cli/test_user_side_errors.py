"""Problems on the user's side are named as such, never as an unexpected error to report."""

from __future__ import annotations

import errno
import gzip
import json
from pathlib import Path

import pytest
import typer

from facetopt.cli.shared.output import handles_errors
from tests.cli.dataset_helpers import SMALL, create_args, json_out, run_cli
from tests.cli.test_dataset_create_errors import _assert_one_error


def _no_report(result) -> None:
    assert "unexpected" not in result.stderr and "report it" not in result.stderr, result.stderr


def test_output_root_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    result = run_cli(*create_args(blocker, *SMALL, "--dry-run"))
    _assert_one_error(result, str(blocker))
    _no_report(result)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"), (errno.EACCES, "permission denied")],
)
def test_disk_full_read_only_and_permissions_are_named(code: int, words: str, capsys) -> None:
    @handles_errors
    def command(as_json: bool = False) -> None:
        raise OSError(code, "os says no", "/state/run/labels.jsonl")

    with pytest.raises(typer.Exit) as caught:
        command()
    assert caught.value.exit_code == 1
    err = capsys.readouterr().err
    assert "/state/run/labels.jsonl" in err and words in err and "hint: " in err
    assert "unexpected" not in err


def test_corrupt_gz_export_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "spans.jsonl.gz"
    bad.write_bytes(b"this was never gzip\n")
    result = run_cli(*create_args(tmp_path / "s", *SMALL, "--source-file", str(bad)))
    _assert_one_error(result, "spans.jsonl.gz", "gzip")
    _no_report(result)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"id": "a"}\n' * 100)[:40])
    result = run_cli(*create_args(tmp_path / "s", *SMALL, "--source-file", str(truncated)))
    _assert_one_error(result, "cut.jsonl.gz")
    _no_report(result)


def test_non_utf8_env_file_and_id_file(tmp_path: Path) -> None:
    env = tmp_path / "latin1.env"
    env.write_bytes("FACET_OPTIMIZER_DATASET=caf\xe9\n".encode("latin-1"))
    result = run_cli(*create_args(tmp_path / "s", *SMALL, "--env-file", str(env)))
    _assert_one_error(result, "UTF-8")
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"\xff\xfe\x00a\n")
    result = run_cli(*create_args(tmp_path / "s", *SMALL, "--root-span-id-file", str(ids)))
    _assert_one_error(result, "UTF-8")


@pytest.mark.parametrize(
    "command", [["compare", "previous", "latest"], ["inspect", "failures", "--facet", "x"]]
)
def test_unknown_split_says_unknown_split(tmp_path: Path, command: list[str]) -> None:
    result = run_cli(*command, "--split", "bogus", "--output-root", str(tmp_path))
    _assert_one_error(result, "unknown split")


def test_bootstrap_run_dir_accepts_a_run_id(tmp_path: Path) -> None:
    root = tmp_path / "s"
    summary = json_out(run_cli(*create_args(root, *SMALL, "--dry-run", "--json")))
    result = run_cli("bootstrap", "--output-root", str(root), "--run-dir", summary["run_id"], "--json")
    assert result.exit_code == 0, result.stderr
    assert (root / "facet_definitions.yaml").is_file()


def test_zero_limits_have_their_own_messages(tmp_path: Path) -> None:
    both = run_cli(*create_args(tmp_path / "s", "--positive-limit", "0", "--negative-limit", "0"))
    _assert_one_error(both, "both 0")
    spans = run_cli(*create_args(tmp_path / "s", "--limit", "0"))
    _assert_one_error(spans, "--limit 0")
    assert "widen" not in both.stderr + spans.stderr


def test_unknown_root_span_ids_are_named_not_a_window_problem(tmp_path: Path) -> None:
    result = run_cli(*create_args(tmp_path / "s", *SMALL, "--root-span-id", "no-such-trace"))
    _assert_one_error(result, "root span id", "no-such-trace")
    assert "widen" not in result.stderr


def _sample_lines() -> list[str]:
    from facetopt.sample import load_sample_spans

    return load_sample_spans().read_text(encoding="utf-8").splitlines()


def _with_created(line: str, created: str) -> str:
    try:
        span = json.loads(line)
    except ValueError:
        return line
    if isinstance(span, dict) and "created" in span:
        span["created"] = created
    return json.dumps(span)


EVERY_TIME = ["--created-after-sql", "'2000-01-01'"]


def test_non_utf8_lines_and_bad_timestamps_are_counted_as_such(tmp_path: Path) -> None:
    lines = _sample_lines()
    lines[5] = _with_created(lines[5], "last tuesday")
    export = tmp_path / "spans.jsonl"
    export.write_bytes("\n".join(lines).encode() + b'\n{"id": "caf\xe9"}\n')
    result = run_cli(
        *create_args(tmp_path / "s", *SMALL, *EVERY_TIME, "--source-file", str(export), "--json")
    )
    summary = json_out(result)
    assert summary["skipped_source_line_reasons"] == {"not valid UTF-8": 1}
    assert "1 source line was not valid UTF-8 and skipped" in summary["warnings"]
    assert any(
        "1 source span has a `created` that is not a timestamp (e.g. 'last tuesday')" in w
        for w in summary["warnings"]
    )


def test_a_window_that_misses_only_because_created_is_not_a_timestamp_says_so(tmp_path: Path) -> None:
    export = tmp_path / "spans.jsonl"
    export.write_text("\n".join(_with_created(line, "yesterday-ish") for line in _sample_lines()) + "\n")
    result = run_cli(*create_args(tmp_path / "s", *SMALL, "--source-file", str(export)))
    _assert_one_error(result, "not a timestamp", "'yesterday-ish'")
    assert "widen" not in result.stderr
