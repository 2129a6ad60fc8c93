"""`eval --resume`: the rows an unfinished run already scored are logged again with their recorded
output and scores, no model or judge call (the task and the scorers skip them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetopt.services.eval.results import ResultKey, ResultsWriter, read_results, result_key

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
        value = (cached.get("scores") or {}).get(name)
        writer.scored(key, name, value, error=(cached.get("scorer_errors") or {}).get(name))
        return value

    replayed.__name__ = replayed.__qualname__ = name
    return replayed


def read_replay(path: Path) -> dict[ResultKey, dict[str, Any]]:
    """(row id, trial) -> the line of a results file."""
    return {(str(r["id"]), int(r.get("trial") or 0)): r for r in read_results(path)}
