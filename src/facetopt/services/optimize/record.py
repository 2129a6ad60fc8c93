"""The optimiser's run folder, `<output root>/optimize/<run id>/`: optimize.json (the report:
candidates, hypotheses, guard decisions, minibatch and train scores, lineage, spend, the final
comparison), candidates.jsonl (one line per candidate, written as each is decided, so an
interrupted run shows how far it got), candidate.yaml and candidate.diff (the winner)."""

from __future__ import annotations

from pathlib import Path

from facetopt.clients import artifacts
from facetopt.errors import NotFoundError
from facetopt.services.optimize.model import Candidate, OptimizeReport

REPORT = "optimize.json"
LATEST = "latest"


def runs_root(output_root: Path) -> Path:
    return output_root / "optimize"


def new_run(output_root: Path) -> Path:
    return artifacts.new_run_dir(runs_root(output_root))


def write_report(report: OptimizeReport) -> None:
    artifacts.write_json(Path(report.run_dir) / REPORT, report)


def write_candidates(run_dir: Path, candidates: list[Candidate]) -> None:
    artifacts.write_jsonl(run_dir / "candidates.jsonl", candidates)


def find_run(output_root: Path, run: str | None) -> Path:
    """A run folder by id (its folder name), path, or `latest` (the default)."""
    root = runs_root(output_root)
    if run and run != LATEST:
        given = Path(run)
        for folder in (given, root / run):
            if (folder / REPORT).is_file() or (folder / "candidates.jsonl").is_file():
                return folder
        known = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
        raise NotFoundError(
            f"no optimize run {run!r} under {root}",
            hint=f"known runs: {', '.join(known[-5:])}"
            if known
            else "run `facetopt optimize --facet NAME` first",
        )
    runs = (
        sorted((p for p in root.glob("*") if (p / REPORT).is_file()), key=lambda p: p.name)
        if root.is_dir()
        else []
    )
    if not runs:
        raise NotFoundError(
            f"no optimize run under {root}",
            hint="run `facetopt optimize --facet NAME` first (check --output-root)",
        )
    return runs[-1]


def read_report(folder: Path) -> OptimizeReport:
    path = folder / REPORT
    if not path.is_file():
        raise NotFoundError(
            f"the optimize run {folder.name} did not finish: {path} is missing",
            hint="its candidates so far are in candidates.jsonl; re-run `facetopt optimize` to resume from the cache",
        )
    return OptimizeReport.model_validate_json(path.read_text(encoding="utf-8"))
