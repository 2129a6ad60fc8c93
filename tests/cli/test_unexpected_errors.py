"""A failure facetopt did not foresee still ends in one `error:` line, never a traceback or a key."""

from __future__ import annotations

import pytest

from tests.cli.dataset_helpers import create_args, run_cli


def test_unexpected_exception_is_one_line_without_the_key(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-visible-in-the-message-123456")

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom with sk-visible-in-the-message-123456\nsecond line")

    monkeypatch.setattr("facetopt.services.dataset.command.run_dataset_create", broken)
    result = run_cli(*create_args(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unexpected RuntimeError: boom with ***")
    assert "hint: re-run with FACETOPT_DEBUG=1" in result.stderr
    assert "Traceback" not in result.stderr and "sk-visible" not in result.stderr + result.stdout
    assert "second line" not in result.stderr


def test_debug_mode_keeps_the_traceback(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACETOPT_DEBUG", "1")

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("facetopt.services.dataset.command.run_dataset_create", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run_cli(*create_args(tmp_path))
