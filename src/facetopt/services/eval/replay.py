"""`eval --resume`: the rows an unfinished run already scored are logged again with their recorded
output and scores, no model or judge call (the task and the scorers skip them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetopt.services.eval.results import ResultKey, ResultsWriter, read_results, result_key
from facetopt.services.eval.scorers import SCORES_OF

REPLAYED_KEY = "replayed_from_results"  # in a row's metadata: its output and scores are replayed


def replaying(scorer: Any, replay: dict[ResultKey, dict[str, Any]], writer: ResultsWriter) -> Any:
    """`scorer`, except on replayed rows, where it gives the score recorded by the earlier run."""
    name = scorer._name() if hasattr(scorer, "_name") else scorer.__name__
    run = scorer.eval_async if hasattr(scorer, "eval_async") else scorer

    async def replayed(
        output: Any, expected: Any = None, input: Any = None, metadata: Any = None, **kw: Any
    ) -> Any:
        key = result_key(metadata)
        cached = replay.get(key) if (metadata or {}).get(REPLAYED_KEY) else None
        if cached is None:
            return await run(output, expected=expected, input=input, metadata=metadata, **kw)
        recorded, errors = cached.get("scores") or {}, cached.get("scorer_errors") or {}
        names = SCORES_OF.get(name, (name,))
        for score in names:
            writer.scored(key, score, recorded.get(score), error=errors.get(score))
        if len(names) == 1:
            return recorded.get(name)
        return [{"name": score, "score": recorded.get(score)} for score in names]

    replayed.__name__ = replayed.__qualname__ = name
    return replayed


def read_replay(path: Path) -> dict[ResultKey, dict[str, Any]]:
    """(row id, trial) -> the line of a results file."""
    return {(str(r["id"]), int(r.get("trial") or 0)): r for r in read_results(path)}
