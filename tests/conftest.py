"""Shared fixtures: every test runs with a clean facetopt environment in its own folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_ISOLATED_PREFIXES = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_", "BT_", "FACETOPT_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key or setting from the developer's machine leaks into a test; cwd is a fresh folder."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def output_root(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    root.mkdir()
    return root
