"""Shared fixtures: every test runs with a clean facetopt environment in its own folder."""

from __future__ import annotations

import dataclasses
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


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every retry the braintrust SDK and the Braintrust client make still happens, without the sleeps.

    Opt in per module with `pytestmark = pytest.mark.usefixtures("fast_retries")` (it imports the SDK)."""
    import braintrust.logger
    from braintrust.api import RetryPolicy

    from facetopt.clients.braintrust import datasets as braintrust_datasets

    original = RetryPolicy.for_mode
    monkeypatch.setattr(braintrust.logger, "BACKGROUND_LOGGER_BASE_SLEEP_TIME_S", 0.0)
    monkeypatch.setattr(
        RetryPolicy,
        "for_mode",
        classmethod(lambda cls, mode: dataclasses.replace(original(mode), backoff_factor=0.0)),
    )
    monkeypatch.setenv("FACETOPT_BT_RETRY_BACKOFF", "0")  # clients/braintrust/retry.py
    monkeypatch.setattr(braintrust_datasets, "VERIFY_DELAY_S", 0.0)
