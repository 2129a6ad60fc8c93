"""The local store is held only for short transactions; a store that cannot be used says why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore, StoreBusyError, StoreUnusableError
from facetopt.domain.dataset import DatasetRow
from tests.cli.dataset_helpers import create_args, json_out, run_cli
from tests.fakes.openai_server import FakeOpenAIServer

SECRET = "sk-test-store-access-1"


def test_readers_and_a_second_writer_get_in_during_a_long_dataset_create(tmp_path: Path) -> None:
    root = tmp_path / "state"
    store_path = root / "store.duckdb"
    args = create_args(root, "--positive-limit", "2", "--negative-limit", "2", "--concurrency", "2", "--json")
    with FakeOpenAIServer(latency=0.3, api_key=SECRET) as server:
        env = {
            **os.environ,
            "FACET_OPTIMIZER_GROUND_TRUTH_API_BASE": server.url,
            "FACET_OPTIMIZER_GROUND_TRUTH_API_KEY": SECRET,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "facetopt.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(root.glob("*/labels.jsonl")):
            time.sleep(0.05)
        import duckdb  # noqa: F401  (imported before timing: the first import is slow)

        waits, reads = [], 0
        while proc.poll() is None and reads < 8:
            start = time.monotonic()
            with LocalStore(store_path, read_only=True, wait=5) as store:  # inspect / eval read like this
                store.conn.execute("SELECT count(*) FROM label_cache").fetchone()
            waits.append(time.monotonic() - start)
            reads += 1
            time.sleep(0.05)
        start = time.monotonic()
        with LocalStore(store_path, wait=5) as store:  # a second writer: another dataset
            row = DatasetRow(id="other:1", facet_name="Task", input={}, expected="x", metadata={})
            store.upsert_rows("other project", "other dataset", [row])
        writer_wait = time.monotonic() - start
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert reads >= 3, "the create finished before the readers could try"
    assert max(waits) < 1.5 and writer_wait < 1.5, (waits, writer_wait)
    with LocalStore(store_path, read_only=True) as store:
        datasets = {(p, d) for p, d, _ in store.list_datasets()}
        labels = store.conn.execute("SELECT count(*) FROM label_cache").fetchone()[0]
    assert ("other project", "other dataset") in datasets and (
        "Facet optimizer",
        "Facet groundtruth",
    ) in datasets
    assert labels >= 1


def test_a_store_held_by_another_process_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    LocalStore(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(StoreBusyError) as busy:
            LocalStore(path, read_only=True, wait=0.5)
        assert time.monotonic() - start < 3
    finally:
        holder.kill()
        holder.wait()
    assert f"PID {holder.pid}" in busy.value.message
    LocalStore(path, read_only=True, wait=2).close()  # free again once the holder is gone


def test_a_directory_a_corrupt_file_and_a_newer_store_each_get_their_own_error(tmp_path: Path) -> None:
    folder = tmp_path / "dir.duckdb"
    folder.mkdir()
    with pytest.raises(StoreUnusableError, match="is a directory"):
        LocalStore(folder)
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreUnusableError, match="not a valid DuckDB database"):
        LocalStore(corrupt, read_only=True)
    newer = tmp_path / "newer.duckdb"
    with LocalStore(newer) as store:
        store.conn.execute("UPDATE store_meta SET version = 99")
    with pytest.raises(StoreUnusableError, match="newer facetopt"):
        LocalStore(newer, read_only=True)


def test_a_corrupt_store_is_named_on_the_command_line(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "store.duckdb").write_bytes(b"garbage" * 500)
    result = run_cli("inspect", "dataset", "--backend", "local", "--output-root", str(root),
                     "--target-project", "P", "--dataset", "D", "--json")  # fmt: skip
    assert result.exit_code == 1
    assert "not a valid DuckDB database" in json_out(result)["error"]["message"]
    assert "in use" not in result.stderr and "Traceback" not in result.stderr


def test_a_hold_lets_this_process_reopen_the_store_and_frees_it_for_others_when_done(tmp_path: Path) -> None:
    from facetopt.clients.local.store import StoreHold

    path = tmp_path / "store.duckdb"
    row = DatasetRow(id="r1", facet_name="Task", input={}, expected="Refund", metadata={})
    with StoreHold(path) as hold:
        hold.start()
        with LocalStore(path) as store:
            store.upsert_rows("p", "d", [row])
        # a read-only session of this process while the store is held open for writing: DuckDB
        # refuses the other mode, so without the hold's say it would wait and give up
        with LocalStore(path, read_only=True, wait=0.5) as store:
            assert store.row_labels("p", "d") == {"r1": "Refund"}
        held_by_us = subprocess.run(
            [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}, read_only=True)"],
            capture_output=True,
            text=True,
        )
        assert held_by_us.returncode != 0  # another process waits while the hold lasts
    after = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import duckdb; c = duckdb.connect({str(path)!r}, read_only=True);"
            " print(c.execute('SELECT count(*) FROM dataset_rows').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
    )
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "1"


def test_a_hold_that_is_not_active_keeps_nothing_open(tmp_path: Path) -> None:
    from facetopt.clients.local.store import StoreHold

    path = tmp_path / "store.duckdb"
    LocalStore(path).close()
    with StoreHold(path, active=False) as hold:
        hold.start()
        opened = subprocess.run(
            [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
            capture_output=True,
            text=True,
        )
        assert opened.returncode == 0, opened.stderr
