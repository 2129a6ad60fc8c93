"""The eval's pure parts: row selection, requests, runner command line and environment, results."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from facetopt.clients.braintrust.bt_runner import (
    RUNNER_BT,
    RUNNER_SDK,
    LineCounter,
    RunnerCommand,
    parse_summary_lines,
    run_runner,
    runner_command,
)
from facetopt.clients.llm.client import Endpoint
from facetopt.errors import InputError
from facetopt.services.eval import task as eval_task
from facetopt.services.eval.launch import PLACEHOLDER_KEY
from facetopt.services.eval.results import EXPERIMENT_LINE
from facetopt.services.eval.run import parse_splits, prompts_for, runner_environment, select_rows
from facetopt.settings import Settings
from tests.services.eval.helpers import FACETS, make_rows


def test_filters_apply_in_order_and_max_rows_takes_the_first_rows_by_id():
    rows = list(reversed(make_rows(12)))  # the store's order must not matter
    selected = select_rows(rows, splits=["train"], facets=["SENTIMENT"], row_ids=[], max_rows=3)
    assert [r.id for r in selected] == ["span001:sentiment", "span005:sentiment", "span007:sentiment"]
    assert all(r.split == "train" and r.facet_name == "Sentiment" for r in selected)
    by_id = select_rows(
        rows, splits=[], facets=[], row_ids=["span004:issues", "span002:issues"], max_rows=None
    )
    assert [r.id for r in by_id] == ["span002:issues", "span004:issues"]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        (dict(splits=["validation"], facets=["Task"], row_ids=[]), "--facet Task left no rows after --split"),
        (dict(splits=[], facets=[], row_ids=["nope:issues"]), "--row-id left no rows"),
    ],
)
def test_an_empty_selection_names_the_filter_that_emptied_it(kwargs, named):
    with pytest.raises(InputError) as caught:
        select_rows(make_rows(6), max_rows=None, **kwargs)
    assert named in caught.value.message


def test_a_split_the_dataset_lacks_is_named_with_the_splits_it_has():
    rows = [r for r in make_rows(6) if r.split == "train"]
    with pytest.raises(
        InputError, match=r"--split validation left no rows \(the dataset's splits: train 4\)"
    ):
        select_rows(rows, splits=["validation"], facets=[], row_ids=[], max_rows=None)
    with pytest.raises(InputError, match="unknown split"):
        parse_splits("test")
    with pytest.raises(InputError, match="--max-rows must be at least 1"):
        select_rows(rows, splits=[], facets=[], row_ids=[], max_rows=0)


def test_unknown_row_ids_are_warned_about_when_others_match():
    warnings: list[str] = []
    select_rows(
        make_rows(4),
        splits=[],
        facets=[],
        row_ids=["span000:issues", "ghost"],
        max_rows=None,
        warn=warnings.append,
    )
    assert warnings == ["1 --row-id value(s) matched no row: ghost"]


def test_a_dataset_facet_missing_from_the_prompt_file_names_the_known_ones():
    rows = make_rows(2)
    rows[1] = rows[1].model_copy(update={"input": {"facet_name": "Task", "preprocessed_text": "x"}})
    with pytest.raises(InputError) as caught:
        prompts_for(rows, FACETS, Path("p.yaml"))
    assert "'Task'" in caught.value.message
    assert "known facets: Issues, Sentiment" in (caught.value.hint or "")
    assert [f.facet_name for f in prompts_for(make_rows(4), FACETS, Path("p.yaml"))] == [
        "Issues",
        "Sentiment",
    ]


def test_brain_facet_models_get_the_prompt_in_extra_body_and_others_get_it_appended():
    facet = FACETS[0]
    brain = eval_task.facet_request(facet, "User: hi", "brain-facet-1", 500, "k")
    assert brain.extra_body == {"suffix_messages": facet.suffix_messages}
    assert [m["role"] for m in brain.messages] == ["system", "user"]
    assert brain.messages[1]["content"].endswith("User: hi")
    other = eval_task.facet_request(facet, "User: hi", "gpt-4o-mini", 500, "k")
    assert other.extra_body is None
    assert other.messages[-1] == facet.suffix_messages[0][0] and len(other.messages) == 3


def test_summary_lines_are_read_in_camel_and_snake_case_among_other_output():
    stdout = "\n".join(
        [
            "bt eval: running 1 file",
            '{"eval_name": "x", "errors": []}',
            json.dumps(
                {
                    "projectName": "p",
                    "experimentName": "e-1",
                    "experimentId": "id1",
                    "experimentUrl": "u1",
                    "scores": {"Factuality": {"score": 0.5}},
                }
            ),  # fmt: skip
            json.dumps({"project_name": "p", "experiment_name": "e-2", "experiment_id": None, "scores": {}}),
            "{not json",
        ]
    )
    first, second = parse_summary_lines(stdout)
    assert (first.experiment_name, first.experiment_id, first.experiment_url) == ("e-1", "id1", "u1")
    assert first.scores == {"Factuality": 0.5}
    assert (second.experiment_name, second.experiment_id) == ("e-2", None)


def test_bt_is_pointed_at_this_python_and_the_sdk_runner_is_the_fallback(tmp_path):
    file = tmp_path / "eval_facet.py"
    bt = runner_command(file, no_send_logs=True, bt="/opt/bt")
    assert bt.runner == RUNNER_BT
    assert bt.argv == ["/opt/bt", "eval", "--jsonl", "--no-send-logs", "--runner", sys.executable, str(file)]
    assert bt.env == {}
    sdk = runner_command(file, no_send_logs=False, bt=None)
    assert sdk.runner == RUNNER_SDK
    assert sdk.argv[:5] == [sys.executable, "-m", "braintrust.cli", "eval", "--jsonl"]
    assert "--no-send-logs" not in sdk.argv and sdk.argv[-1] == str(file)


def _endpoint(role, key):
    return Endpoint(role, "m", "http://127.0.0.1:9/v1", SecretStr(key) if key else None)


def test_keys_travel_in_the_environment_only_and_logging_flushes_synchronously(tmp_path):
    settings = Settings(braintrust_api_key=SecretStr("bt-secret-key"), target_org="acme")
    base = {
        "PATH": "/bin",
        "FACETOPT_EVAL_STALE": "x",
        "BRAINTRUST_API_KEY": "from-shell",
        "BT_EVAL_WATCH": "1",
        "BT_EVAL_FIRST": "3",
        "BT_EVAL_RUNNER": "/usr/bin/python2",
        "BRAINTRUST_PROFILE": "work",
        "BRAINTRUST_ENV_FILE": "/home/me/.env",
    }
    common = dict(config_path=tmp_path / "c.json", results_path=tmp_path / "r.jsonl", log_rows=10)
    model, judge = _endpoint("facet_model", "model-secret"), _endpoint("judge", "judge-secret")
    logged = runner_environment(base, settings, model=model, judge=judge, send_logs=True, **common)
    assert (
        logged[eval_task.MODEL_KEY_ENV] == "model-secret"
        and logged[eval_task.JUDGE_KEY_ENV] == "judge-secret"
    )
    assert logged["BRAINTRUST_API_KEY"] == "bt-secret-key" and logged["BRAINTRUST_ORG_NAME"] == "acme"
    assert logged["BRAINTRUST_SYNC_FLUSH"] == "1" and "FACETOPT_EVAL_STALE" not in logged
    local = runner_environment(
        base, settings, model=model, judge=_endpoint("judge", None), send_logs=False, **common
    )
    # bt resolves credentials even without logs: a placeholder, never the user's key
    assert local["BRAINTRUST_API_KEY"] == PLACEHOLDER_KEY and eval_task.JUDGE_KEY_ENV not in local
    for env in (logged, local):
        assert not [k for k in env if k.startswith("BT_EVAL_")]
        assert "BRAINTRUST_PROFILE" not in env and "BRAINTRUST_ENV_FILE" not in env
    assert local[eval_task.CONFIG_ENV] == str(tmp_path / "c.json")


def test_trials_are_averaged_and_rows_without_results_are_errors():
    rows = make_rows(3)
    records = [
        {"id": rows[0].id, "trial": 0, "output": "NONE", "error": None, "metadata": {},
         "scores": {"binary_decision_match": 1.0, "positive_recall": None, "Factuality": 1.0}},
        {"id": rows[0].id, "trial": 1, "output": "x", "error": None, "metadata": {},
         "scores": {"binary_decision_match": 0.0, "positive_recall": None, "Factuality": 0.4}},
        {"id": rows[1].id, "trial": 0, "output": "", "error": "HTTP 500: boom", "metadata": {},
         "scores": {"binary_decision_match": None}},
        {"id": rows[1].id, "trial": 1, "output": "", "error": "HTTP 500: boom", "metadata": {},
         "scores": {"binary_decision_match": None}},
    ]  # fmt: skip
    first, second, third = eval_task.eval_rows(rows, records, trials=2)
    assert first.scores["binary_decision_match"] == 0.5 and first.scores["positive_recall"] is None
    assert first.scores["Factuality"] == pytest.approx(0.7)
    assert first.error is None and len(first.metadata["trials"]) == 2
    assert second.error == "HTTP 500: boom"
    assert third.error == eval_task.NO_RESULT and third.output == ""


def test_a_results_line_is_written_once_the_task_and_every_scorer_reported(tmp_path):
    path = tmp_path / "results.jsonl"
    writer = eval_task.ResultsWriter(path, score_names=("a", "b"))
    writer.task_done(("r1", 0), {"id": "r1", "output": "NONE"})
    writer.scored(("r1", 0), "a", 1.0)
    assert path.read_text() == ""
    writer.scored(("r1", 0), "b", None, error="judge down")
    (line,) = eval_task.read_results(path)
    assert line["scores"] == {"a": 1.0, "b": None} and line["scorer_errors"] == {"b": "judge down"}


def test_progress_counts_scored_rows_not_the_experiment_line(tmp_path):
    # the eval writes the experiment it logs to at its first row: counting it as a row would start
    # the flush deadline while the last row is still waiting for its model
    path = tmp_path / "results.jsonl"
    counter = LineCounter(path, ignore=EXPERIMENT_LINE)
    writer = eval_task.ResultsWriter(path, score_names=("a",))
    writer.experiment({"id": "exp-1", "source": "span"})
    writer.task_done(("r1", 0), {"id": "r1", "output": "NONE"})
    writer.scored(("r1", 0), "a", 1.0)
    assert counter.new_lines() == 1
    writer.task_done(("r2", 0), {"id": "r2", "output": "NONE"})
    writer.scored(("r2", 0), "a", 0.0)
    writer.experiment({"id": "exp-1", "source": "summary"})
    assert counter.new_lines() == 1


_SLEEPER = """
import signal, sys, time, pathlib
def stop(*_):
    pathlib.Path(sys.argv[1]).write_text("got SIGINT")
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
print("ready", file=sys.stderr, flush=True)
time.sleep(30)
"""


def test_ctrl_c_is_forwarded_to_the_runner_and_exits_130(tmp_path):
    marker = tmp_path / "marker"
    lines: list[str] = []

    def tick() -> None:
        if lines and not marker.exists():  # the child has installed its handler
            raise KeyboardInterrupt

    command = RunnerCommand(RUNNER_SDK, [sys.executable, "-c", _SLEEPER, str(marker)])
    started = time.monotonic()
    outcome = run_runner(
        command, {"PATH": "/usr/bin:/bin"}, on_tick=tick, on_stderr=lines.append, tick_seconds=0.05
    )
    assert outcome.stopped_by == "SIGINT" and outcome.interrupted and not outcome.ok
    assert marker.read_text() == "got SIGINT"
    assert time.monotonic() - started < 10


def test_a_failing_runner_reports_its_exit_code_and_stderr_tail():
    script = (
        "import sys; print('noise'); [print(f'line {i}', file=sys.stderr) for i in range(60)]; sys.exit(3)"
    )
    outcome = run_runner(RunnerCommand(RUNNER_BT, [sys.executable, "-c", script]), {"PATH": "/usr/bin:/bin"})
    assert outcome.returncode == 3 and not outcome.ok and not outcome.summaries
    assert outcome.tail_text().splitlines()[-1] == "line 59"
