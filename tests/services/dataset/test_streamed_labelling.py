"""Labelling that starts on the newest calls while older candidates are still parsed and sampled:
the dataset is the one a whole parse first would give, identical requests share one call across
batches, a batch that fails keeps what was paid, and --facet-name refuses before paying."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from facetopt.clients.artifacts import JsonlJournal
from facetopt.clients.llm.client import ChatRequest, ChatResult, Endpoint
from facetopt.clients.local.store import BatchWriter, LocalStore, write_labels
from facetopt.services.dataset import labelling
from facetopt.services.dataset.create import spans
from facetopt.services.progress import SilentProgress
from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import FakeOpenAIServer

KEY = "sk-streamed-test"


def _endpoint(url: str) -> Endpoint:
    return Endpoint(role="labeller", model="m", base_url=url, api_key=SecretStr(KEY))


def _request(endpoint: Endpoint, text: str) -> ChatRequest:
    return ChatRequest.build(endpoint, [{"role": "user", "content": text}], max_tokens=20)


def _label(batches, endpoint: Endpoint, root: Path, concurrency: int = 4) -> labelling.LabelOutcome:
    return labelling.label_request_batches(
        batches,
        endpoint,
        root / "store.duckdb",
        root / "labels.jsonl",
        concurrency=concurrency,
        timeout=30.0,
        deadline=60.0,
        progress=SilentProgress(),
    )


def _until_received(server: FakeOpenAIServer, count: int) -> Iterator[dict[str, ChatRequest]]:
    """Empty batches (each a turn of the labeller's event loop) until the fake has `count` requests."""
    deadline = time.monotonic() + 20
    while len(server.requests) < count and time.monotonic() < deadline:
        yield {}
        time.sleep(0.001)


def _rows(summary: dict) -> list[dict]:
    rows_file = Path(summary["run_dir"]) / "dataset_rows.jsonl"
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    for row in rows:  # the clock's: the bundled sample is moved to the time it is loaded
        row["metadata"].pop("ground_truth_generated_at")
        row["metadata"].pop("source_created")
    return sorted(rows, key=lambda row: row["id"])


def test_batches_of_three_candidates_write_the_dataset_a_whole_parse_writes(tmp_path, monkeypatch):
    limits = ["--positive-limit", "25", "--negative-limit", "25", "--json"]
    monkeypatch.setattr(spans, "SAMPLE_BATCH", 10**9)  # every candidate parsed before the first label
    whole = json_out(run_cli(*create_args(tmp_path / "whole", *limits)))
    monkeypatch.setattr(spans, "SAMPLE_BATCH", 3)
    streamed = json_out(run_cli(*create_args(tmp_path / "streamed", *limits)))
    assert streamed["counts"]["candidates"] > 30  # many batches of three
    assert streamed["counts"] == whole["counts"]
    assert streamed["final_bucket_counts"] == whole["final_bucket_counts"]
    assert streamed["split_counts"] == whole["split_counts"]
    assert _rows(streamed) == _rows(whole)
    for summary in (whole, streamed):
        parsed = (Path(summary["run_dir"]) / "parsed_calls.jsonl").read_text().splitlines()
        assert len(parsed) == whole["counts"]["parsed_calls"]


def test_a_request_repeated_in_a_later_batch_shares_the_first_ones_call(tmp_path):
    with FakeOpenAIServer(api_key=KEY, latency=0.05) as server:
        endpoint = _endpoint(server.url)
        first, other = _request(endpoint, "first conversation"), _request(endpoint, "other conversation")
        again = _request(endpoint, "first conversation")
        outcome = _label(iter([{"r1": first}, {"r2": again, "r3": other}]), endpoint, tmp_path)
        sent = [r.body["messages"][0]["content"] for r in server.requests]
    assert sorted(sent) == ["first conversation", "other conversation"]
    assert set(outcome.labels) == {"r1", "r2", "r3"} and outcome.labels["r1"] == outcome.labels["r2"]
    assert (outcome.paid, outcome.requests_paid, outcome.from_cache) == (3, 2, 0)


def test_a_row_joining_a_call_already_answered_gets_its_label_without_a_call(tmp_path):
    endpoint = _endpoint("http://127.0.0.1:9/v1")
    request = _request(endpoint, "a conversation")
    run = labelling._LabelRun(  # the order a slow batch makes: the answer is in before the repeat
        endpoint, tmp_path / "store.duckdb", tmp_path / "labels.jsonl", SilentProgress(), "labelling", None
    )
    run.journal, run.writer = (
        JsonlJournal(tmp_path / "labels.jsonl"),
        BatchWriter(tmp_path / "store.duckdb", write_labels),
    )
    with LocalStore(tmp_path / "store.duckdb") as store:
        assert run._take({"r1": request}, store) == [request]
        run._on_result(ChatResult(key=request.key, text="Refund request"))
        assert run._take({"r2": request}, store) == []
    run.close()
    assert run.outcome.labels == {"r1": "Refund request", "r2": "Refund request"}
    assert (run.outcome.paid, run.outcome.requests_paid) == (2, 1)
    with LocalStore(tmp_path / "store.duckdb") as store:
        assert store.cached_labels([request.key]) == {request.key: "Refund request"}


def test_a_batch_that_fails_keeps_the_labels_already_paid_for(tmp_path):
    with FakeOpenAIServer(api_key=KEY, latency=0.3) as server:
        endpoint = _endpoint(server.url)
        paid = [_request(endpoint, f"conversation {i}") for i in range(3)]

        def batches() -> Iterator[dict[str, ChatRequest]]:
            yield {f"r{i}": request for i, request in enumerate(paid)}
            yield from _until_received(server, 3)
            raise RuntimeError("the sampler broke on the next batch")

        with pytest.raises(RuntimeError, match="sampler broke"):
            _label(batches(), endpoint, tmp_path)
        assert len(server.requests) == 3
    with LocalStore(tmp_path / "store.duckdb") as store:
        assert set(store.cached_labels([r.key for r in paid])) == {r.key for r in paid}
    journal = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert sorted(line["cache_key"] for line in journal) == sorted(r.key for r in paid)


def test_a_batch_that_fails_leaves_unsent_what_was_still_waiting_for_a_worker(tmp_path):
    with FakeOpenAIServer(api_key=KEY, latency=0.3) as server:
        endpoint = _endpoint(server.url)
        queued = [_request(endpoint, f"conversation {i}") for i in range(3)]

        def batches() -> Iterator[dict[str, ChatRequest]]:
            yield {f"r{i}": request for i, request in enumerate(queued)}
            yield from _until_received(server, 1)  # the one worker is busy with the first
            raise RuntimeError("the sampler broke on the next batch")

        with pytest.raises(RuntimeError, match="sampler broke"):
            _label(batches(), endpoint, tmp_path, concurrency=1)
        assert len(server.requests) == 1  # the one in flight; the two queued behind it were not paid for
    with LocalStore(tmp_path / "store.duckdb") as store:
        assert set(store.cached_labels([r.key for r in queued])) == {queued[0].key}


def test_facet_name_over_several_prompts_is_refused_before_any_label_is_paid(tmp_path):
    env = {"FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": "", "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": KEY}
    with FakeOpenAIServer(api_key=KEY) as server:
        env["FACET_OPTIMIZER_GROUND_TRUTH_API_BASE"] = server.url
        result = run_cli(*create_args(tmp_path, "--facet-name", "Task", "--json"), env=env)
        assert result.exit_code != 0
        assert "different facet prompts" in result.stderr
        assert server.requests == []
