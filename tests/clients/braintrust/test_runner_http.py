"""What the runner's HTTP adapter counts as rows held by Braintrust: root spans of the experiment
that arrived with their output, in accepted `/logs3` writes; not child spans (the task, scorers,
the judge's LLM call carry the case's root_span_id too), not a root span logged before its output."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from facetopt.clients.braintrust.activity import ActivityWriter, read_activity
from facetopt.clients.braintrust.runner_http import RecordingAdapter

EXPERIMENT = "exp-1"


def _reply(status: int, payload: dict | None = None):
    return SimpleNamespace(status_code=status, json=lambda: payload or {}, text="")


def _write(adapter: RecordingAdapter, rows: list[dict], status: int = 200) -> None:
    body = json.dumps({"rows": rows, "api_version": 2}).encode()
    adapter._observe(SimpleNamespace(method="POST", body=body), "/logs3", _reply(status))


def _root(case: str, **fields):
    return {"id": case, "span_id": case, "root_span_id": case, "span_parents": None,
            "experiment_id": EXPERIMENT, **fields}  # fmt: skip


def _child(case: str, name: str, **fields):
    return {"id": f"{case}-{name}", "span_id": f"{case}-{name}", "root_span_id": case,
            "span_parents": [case], "experiment_id": EXPERIMENT, **fields}  # fmt: skip


def test_only_root_spans_with_their_output_count_as_held_rows(tmp_path: Path):
    path = tmp_path / "activity.jsonl"
    adapter = RecordingAdapter(ActivityWriter(path))
    adapter._observe(
        SimpleNamespace(method="POST", body=b"{}"),
        "/v1/experiment",
        _reply(200, {"id": EXPERIMENT, "name": "n", "project_id": "p"}),
    )
    # batch 1: case a complete; case b's root started (no output yet) with its task span;
    # case c only through the judge's LLM span and a score span
    _write(
        adapter,
        [
            _root("a", input={"x": 1}, output="NONE"),
            _root("b", input={"x": 2}),
            _child("b", "task", output="NONE"),
            _child("c", "Factuality-llm", output="{}"),
            _child("c", "score", scores={"Factuality": 1}),
        ],
    )
    assert read_activity(path).logged_rows == 1  # a
    # a refused write of d's root span: nothing held
    _write(adapter, [_root("d", output="x")], status=500)
    assert read_activity(path).logged_rows == 1
    # batch 2: b's root span merged with its output (an errored row's output is "")
    _write(adapter, [_root("b", output="", _is_merge=True), _root("a", output="NONE", _is_merge=True)])
    assert read_activity(path).logged_rows == 2  # a, b
    # rows of another experiment never count
    _write(adapter, [{**_root("e", output="x"), "experiment_id": "other"}])
    assert read_activity(path).logged_rows == 2
