"""facetopt installed from its wheel works outside the repository.

The wheel is built with `uv build --wheel --offline` and installed with `--no-deps` into a fresh
venv under the test's temporary folder. Third-party dependencies come from the project venv
through a `.pth` line (its directory is appended to sys.path, so the project's editable facetopt
install, whose own `.pth` is not processed there, never shadows the wheel). Then, from a folder
outside the checkout and without `bt` on PATH: dataset create on the bundled sample, bootstrap,
and an eval that the braintrust SDK runner runs from the packaged eval file in site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
UV_ENV = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def _uv() -> list[str] | None:
    """uv on PATH, else `python3 -m uv` (as the Makefile looks for it)."""
    if found := shutil.which("uv"):
        return [found]
    for python in (sys.executable, shutil.which("python3")):
        if python and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    return None


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the repository with the freshly built wheel installed; returns its bin folder."""
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (neither `uv` on PATH nor `python3 -m uv`): cannot build the wheel")
    tmp = tmp_path_factory.mktemp("wheel")
    assert not tmp.resolve().is_relative_to(REPO), "the venv must live outside the repository"
    env = {**os.environ, **UV_ENV}
    build = _run([*uv, "build", "--wheel", "--offline", "--out-dir", str(tmp / "dist"), str(REPO)], tmp, env)
    if build.returncode != 0 and "network was disabled" in build.stderr:
        pytest.skip(f"uv cannot build offline here (the build backend is not cached): {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp / "dist").glob("facetopt-*.whl")

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site_packages = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp, env
        ).stdout.strip()
    )
    project_site_packages = sysconfig.get_path("purelib")  # this (project) venv's third-party packages
    (site_packages / "project_dependencies.pth").write_text(project_site_packages + "\n", encoding="utf-8")
    install = _run(
        [*uv, "pip", "install", "--offline", "--no-deps", "--python", str(python), str(wheel)], tmp, env
    )
    assert install.returncode == 0, install.stderr
    return venv / "bin"


@pytest.fixture(scope="module")
def outside(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A working folder outside the checkout and an environment whose PATH has the venv and no `bt`."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    system = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not shutil.which("bt", path=p)]
    system = [p for p in system if not Path(p).resolve().is_relative_to(REPO)]
    isolated = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_", "BT_", "FACETOPT_", "PYTHON", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(isolated)}
    env.update(PATH=os.pathsep.join([str(installed), *system]), BRAINTRUST_DISABLE_ATEXIT_FLUSH="1")
    return cwd, env


def _json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_wheel_is_what_gets_imported(installed: Path, outside):
    cwd, env = outside
    probe = (
        "import importlib.util, facetopt; print(facetopt.__file__);"
        "print(importlib.util.find_spec('facetopt.eval_facet').origin)"
    )
    result = _run([str(installed / "python"), "-c", probe], cwd, env)
    assert result.returncode == 0, result.stderr
    site_packages = installed.parent / "lib"
    for path in result.stdout.split():
        assert Path(path).resolve().is_relative_to(site_packages.resolve()), path


def test_dataset_bootstrap_and_eval_run_from_the_installed_wheel(installed: Path, outside):
    cwd, env = outside
    facetopt = str(installed / "facetopt")
    created = _json(
        _run(
            [facetopt, "dataset", "create", "--target-project", "T", "--dataset", "D"]
            + ["--positive-limit", "3", "--negative-limit", "3", "--json"],
            cwd,
            env,
        )
    )
    assert created["backend"] == "local" and created["source_project"] == "bundled sample"
    assert created["counts"]["dataset_rows"] >= 6 and created["failed_rows"] == []

    booted = _run([facetopt, "bootstrap"], cwd, env)
    assert booted.returncode == 0, booted.stderr
    assert (cwd / ".local" / "facet-optimizer" / "facet_definitions.yaml").is_file()

    ran = _json(
        _run(
            [facetopt, "eval", "--split", "validation", "--target-project", "T", "--dataset", "D", "--json"],
            cwd,
            env,
        )
    )
    assert ran["runner"] == "braintrust-sdk" and ran["rows"] >= 1 and ran["errors"] == 0
    assert ran["metrics"] and ran["metrics"][-1]["facet_name"] == "overall"
    _, python, *_, eval_file = (cwd / ran["run_dir"] / "runner.log").read_text().splitlines()[0].split()
    assert Path(python).parent == installed, "the runner must be the installed facetopt's Python"
    site_packages = (installed.parent / "lib").resolve()
    assert Path(eval_file).name == "eval_facet.py" and Path(eval_file).resolve().is_relative_to(site_packages)
