"""`facetopt bootstrap`: promote a run's captured facet prompts to the editable prompt file."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from facetopt.clients import artifacts
from facetopt.clients.prompt_file import PromptDocument, load_prompt_file
from facetopt.errors import NotFoundError, PromptFileError

RUN_PROMPT_FILE = "facet_prompt.yaml"
PROMPT_FILE_NAME = "facet_definitions.yaml"
RUN_ID = re.compile(r"(\d{8}T\d{6}Z)(?:-(\d+))?")

RememberPrompt = Callable[[str, str, str], None]
FacetStatus = Literal["new", "changed", "same", "unchanged"]


class BootstrapFacet(BaseModel):
    facet_name: str
    prompt_sha256: str
    # new: not in the old target; changed/same: prompt text vs the old target; unchanged: nothing written
    status: FacetStatus


class BootstrapResult(BaseModel):
    source: str
    output: str
    facets: list[BootstrapFacet]
    written: bool
    unchanged: bool
    env_line: str
    # what the overwrite changed in the prompt texts (only with --force over a different file)
    diff: str | None = None


def _run_of(folder: Path) -> tuple[str | None, str | None]:
    """(target project, dataset) a run folder's summary.json names, Nones when it names none."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    return summary.get("target_project"), summary.get("dataset")


def latest_run_prompt(output_root: Path, dataset: str | None = None, project: str | None = None) -> Path:
    """`facet_prompt.yaml` of the newest run folder under the output root (run ids sort by time,
    then -N), among the runs of the configured dataset (and project) when one is configured."""
    runs = []
    if output_root.is_dir():
        for child in output_root.iterdir():
            match = RUN_ID.fullmatch(child.name)
            if match and (child / RUN_PROMPT_FILE).is_file():
                runs.append((match.group(1), int(match.group(2) or 1), child))
    if not runs:
        raise NotFoundError(
            f"no run folder with {RUN_PROMPT_FILE} under {output_root}",
            hint="run `facetopt dataset create` first, or pass --run-dir",
        )
    if dataset is None and project is None:
        return max(runs)[2] / RUN_PROMPT_FILE
    mine = [run for run in runs if _matches(_run_of(run[2]), dataset, project)]
    if not mine:
        wanted = f"dataset {dataset!r}" if dataset else "any dataset"
        where = f" of project {project!r}" if project else ""
        others = sorted({f"{p}/{d}" for p, d in (_run_of(r[2]) for r in runs) if d})
        raise NotFoundError(
            f"no run of {wanted}{where} under {output_root}"
            + (f" (runs there are of {', '.join(others)})" if others else ""),
            hint="pass --dataset (or set FACET_OPTIMIZER_DATASET) to the dataset you mean, or --run-dir",
        )
    return max(mine)[2] / RUN_PROMPT_FILE


def _matches(run: tuple[str | None, str | None], dataset: str | None, project: str | None) -> bool:
    return (dataset is None or run[1] == dataset) and (project is None or run[0] == project)


def source_prompt_path(
    output_root: Path, run_dir: Path | None, dataset: str | None = None, project: str | None = None
) -> Path:
    if run_dir is None:
        return latest_run_prompt(output_root, dataset, project)
    if not run_dir.exists() and (output_root / run_dir).exists():
        run_dir = output_root / run_dir  # a run id, as `dataset upload --run-dir` takes
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise NotFoundError(
            f"run folder not found: {run_dir}",
            hint="pass the folder `facetopt dataset create` printed after `artifacts:` (or a run id under --output-root)",
        )
    source = run_dir / RUN_PROMPT_FILE
    if not source.is_file():
        raise NotFoundError(
            f"run folder {run_dir} has no {RUN_PROMPT_FILE}",
            hint="pass a folder written by `facetopt dataset create`",
        )
    return source


def prompt_diff(old: PromptDocument | None, old_path: Path, old_text: str, new: PromptDocument) -> str:
    """A unified diff of the prompt texts, facet by facet; of the whole files when only other lines differ."""
    lines: list[str] = []
    old_facets = {f.facet_name.lower(): f for f in old.facets} if old else {}
    new_facets = {f.facet_name.lower(): f for f in new.facets}
    for key in sorted(old_facets.keys() | new_facets.keys()):
        before, after = old_facets.get(key), new_facets.get(key)
        name = (after or before).facet_name  # type: ignore[union-attr]
        lines += difflib.unified_diff(
            before.prompt_text.splitlines() if before else [],
            after.prompt_text.splitlines() if after else [],
            fromfile=f"{old_path} ({name})" if before else "/dev/null",
            tofile=f"{new.path} ({name})" if after else "/dev/null",
            lineterm="",
        )
    if not lines:
        lines += difflib.unified_diff(
            old_text.splitlines(), new.text.splitlines(), str(old_path), str(new.path), lineterm=""
        )
    return "\n".join(lines)


def env_line(output: Path) -> str:
    value = str(output)
    if re.search(r"[\s#'\"]", value):
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"FACET_OPTIMIZER_PROMPT={value}"


def _statuses(source: PromptDocument, old: PromptDocument | None, state: str) -> list[BootstrapFacet]:
    """state: "unchanged" (nothing written), "new" (no target before) or "replaced"."""
    old_facets = {f.facet_name.lower(): f for f in old.facets} if old else {}
    facets = []
    for facet in source.facets:
        before = old_facets.get(facet.facet_name.lower())
        if state == "unchanged":
            status = "unchanged"
        elif state == "replaced" and old is None:
            status = "changed"  # the old target could not be read
        elif before is None:
            status = "new"
        else:
            status = "same" if before.prompt_sha256 == facet.prompt_sha256 else "changed"
        facets.append(
            BootstrapFacet(facet_name=facet.facet_name, prompt_sha256=facet.prompt_sha256, status=status)
        )
    return facets


def bootstrap(
    output_root: Path,
    run_dir: Path | None,
    output: Path | None,
    force: bool,
    remember_prompt: RememberPrompt | None = None,
    dataset: str | None = None,
    project: str | None = None,
) -> BootstrapResult:
    """Copy a run's `facet_prompt.yaml` byte for byte to the prompt file; keep edits unless forced.
    Without `run_dir`, the newest run of `dataset` (and `project`) when they are configured."""
    source_path = source_prompt_path(output_root, run_dir, dataset, project)
    source = load_prompt_file(source_path)
    target = output if output is not None else output_root / PROMPT_FILE_NAME
    if target.is_dir():
        raise PromptFileError(f"--output {target} is a folder", hint="pass the path of a .yaml file")
    payload = source_path.read_bytes()
    old_bytes = target.read_bytes() if target.is_file() else None
    unchanged = old_bytes == payload
    old_doc, diff = None, None
    if old_bytes is not None and not unchanged:
        old_text = old_bytes.decode("utf-8", errors="replace")
        try:
            old_doc = load_prompt_file(target)
        except PromptFileError:
            old_doc = None  # a broken target: show the whole-file diff
        diff = prompt_diff(old_doc, target, old_text, source)
        if not force:
            raise PromptFileError(
                f"{target} exists and differs from {source_path}",
                hint=f"pass --force to overwrite it, or --output for another file. Differences:\n{diff}",
            )
    if not unchanged:
        artifacts.write_bytes(target, payload)
    if remember_prompt is not None:
        for facet in source.facets:
            remember_prompt(facet.prompt_sha256, facet.facet_name, facet.prompt_text)
    return BootstrapResult(
        source=str(source_path),
        output=str(target),
        facets=_statuses(
            source, old_doc, "unchanged" if unchanged else "new" if old_bytes is None else "replaced"
        ),
        written=not unchanged,
        unchanged=unchanged,
        env_line=env_line(target),
        diff=diff,
    )


def bootstrap_prompt_file(
    store_path: Path,
    output_root: Path,
    run_dir: Path | None,
    output: Path | None,
    force: bool,
    dataset: str | None = None,
    project: str | None = None,
) -> BootstrapResult:
    """`facetopt bootstrap`: `bootstrap`, with every promoted prompt kept in the store's prompt
    history (so compare and publish can show its text later)."""
    from facetopt.clients.local.store import LocalStore

    with LocalStore(store_path) as store:
        return bootstrap(
            output_root, run_dir, output, force, store.remember_prompt, dataset=dataset, project=project
        )
