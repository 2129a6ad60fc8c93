"""The end-to-end tests' shared state: one offline demo run for the whole session."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import STRAY_USER_SETTINGS, DemoRun, facetopt_env, run_facetopt


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`facetopt demo --json` once for the session (about 15 s): every e2e test reads its artifacts."""
    cwd = tmp_path_factory.mktemp("demo")
    output_root = cwd / "demo-root"
    result = run_facetopt(
        ["demo", "--json", "--output-root", str(output_root)], cwd, facetopt_env(**STRAY_USER_SETTINGS)
    )
    assert result.returncode == 0, result.explain()
    return DemoRun(cwd, output_root, result)
