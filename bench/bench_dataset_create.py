"""End to end: the real `facetopt dataset create` over a generated 100k-span export, labeller faked.

    python bench/bench_dataset_create.py                  # 100k spans, ~1000 calls, C=128, L=0.05 and 1 s
    python bench/bench_dataset_create.py --latency 1.0 --spans 20000

Per latency, in one run, `--repeat` rounds (3) of: the same command with --dry-run (interpreter
start, ingest, parse, sample; no labelling), `python -m facetopt.cli dataset create --backend local
...` as a child process against a fresh fake, then a bare client (httpx2 + semaphore) and the
original scripts' labeller (sync openai client in a ThreadPoolExecutor(C), bench_rate_limit.py)
replaying the very requests facetopt sent (the same messages: the fake's work per request depends on
them), each on another fresh fake. Medians are reported (one dry run
varies by most of a second). Reported:
- create minus --dry-run: what labelling costs the user (client set-up, calls, writes, cache),
  against the ideal, the bare client's wall and the original threads' wall (issue 12: within
  1.05x the bare client and no slower than the threads);
- total: the command's wall time (interpreter start, ingest, sampling, labelling, storing);
- labelling: first request arrival to last reply, as the fake saw them, against the ideal
  ceil(calls/C) x L and against the bare client timed the same way. Calls are the distinct
  requests: rows with the same trace, prompt and model share one label (the label cache);
- ingest + sample: total minus labelling, as export spans per second, and how much of it the
  dry run does not account for;
- peak RSS of the facetopt process alone (os.wait4's rusage of that child).
The fakes run in their own processes. At L = 0.05 s and C = 128 (2560 requests/s) a Python fake
on 2 cores measures itself (reference/performance.md): the L = 1 s row is the meaningful one for
labelling, the bare client's ratio shows what the machine allows at 0.05 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

from bench_ingest import write_export  # noqa: E402
from bench_labelling import bare  # noqa: E402
from bench_rate_limit import original_threads  # noqa: E402
from fake_process import FakeProcess as Fake  # noqa: E402

WIDE_WINDOW = ("'2000-01-01T00:00:00Z'", "NOW()")  # the generated export is not shifted to "now"
KEY = "bench"


def _child_env() -> dict[str, str]:
    prefixes = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_", "FACETOPT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["FACET_OPTIMIZER_GROUND_TRUTH_API_KEY"] = KEY
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


LAST_RUN: dict[str, float] = {}  # the last command's start and end (time.monotonic) and CPU seconds


def dataset_create(
    export: Path, work: Path, url: str, concurrency: int, per_bucket: int, dry_run: bool = False
) -> tuple[float, float, dict]:
    """Run the real command; (wall seconds, peak RSS MB of that process, its --json summary).
    LAST_RUN gets its start and end on the clock the fakes use (time.monotonic) and its CPU seconds."""
    command = [
        sys.executable, "-m", "facetopt.cli", "dataset", "create", "--backend", "local",
        "--source-file", str(export), "--target-project", "B", "--dataset", "D", "--json",
        "--output-root", str(work / "out"), "--ground-truth-api-base", url,
        "--concurrency", str(concurrency),
        "--positive-limit", str(per_bucket), "--negative-limit", str(per_bucket),
        "--created-after-sql", WIDE_WINDOW[0], "--created-before-sql", WIDE_WINDOW[1],
    ]  # fmt: skip
    command += ["--dry-run"] if dry_run else []
    out, err = work / "stdout.json", work / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=work, env=_child_env())
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not the fakes'
        ended = time.monotonic()
        wall = ended - started
    LAST_RUN.update(start=started, end=ended, cpu=usage.ru_utime + usage.ru_stime)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"dataset create failed ({child.returncode}):\n{err.read_text()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, json.loads(out.read_text())


def measure_dry_run(export: Path, spans: int, per_bucket: int, quiet: bool = False) -> float:
    """The same command with --dry-run: interpreter start, ingest, parse and sample, no labelling."""
    with tempfile.TemporaryDirectory(prefix="facetopt-bench-run-") as folder:
        wall, rss, summary = dataset_create(export, Path(folder), "simulated://", 128, per_bucket, True)
    selected = sum(sum(buckets.values()) for buckets in summary["would_label"].values())
    if quiet:
        return wall
    print(
        f"dry run (same command, --dry-run): {wall:.2f}s = {spans / wall:,.0f} export spans/s "
        f"({summary['counts']['candidates']:,} candidates, {selected:,} selected), peak RSS {rss:.0f} MB"
    )
    return wall


def measure(export: Path, spans: int, latency: float, concurrency: int, per_bucket: int, repeat: int) -> None:
    """`repeat` rounds of (dry run, create, bare client, original threads), each on fresh fakes, in
    turn; medians are reported, since one dry run alone varies by most of a second."""
    dry_walls, walls, base_walls, threads_walls, phases, bases = [], [], [], [], [], []
    heads, tails, cpus, base_cpus = [], [], [], []
    for _ in range(repeat):
        dry_walls.append(measure_dry_run(export, spans, per_bucket, quiet=True))
        dry_cpu = LAST_RUN["cpu"]
        with tempfile.TemporaryDirectory(prefix="facetopt-bench-run-") as folder:
            with Fake(latency, keep_messages=True) as fake:
                wall, rss, summary = dataset_create(export, Path(folder), fake.url, concurrency, per_bucket)
        heads.append(fake.first - LAST_RUN["start"])  # start to the first request: ingest, sample, set-up
        tails.append(LAST_RUN["end"] - fake.last)  # last reply to exit: committing, storing, verifying
        cpus.append(LAST_RUN["cpu"] - dry_cpu)
        # identical requests (same trace text, prompt and model) are labelled once: the distinct calls
        # are the paid requests (labels_paid counts labels, a shared request paying for several)
        selected, calls = summary["counts"]["selected_calls"], summary["label_requests_paid"]
        rows, failed = summary["counts"]["dataset_rows"], summary["failed_rows"]
        assert not failed and fake.count == calls and rows == selected, (
            f"{fake.count} requests, {calls} paid, {selected} selected, {rows} rows, failed: {failed[:3]}"
        )
        with Fake(latency) as base_fake:
            cpu_before = time.process_time()
            base_walls.append(asyncio.run(bare(base_fake.url, calls, concurrency, fake.messages)))
            base_cpus.append(time.process_time() - cpu_before)
        assert base_fake.count == calls
        with Fake(latency) as threads_fake:
            threads_wall, threads_failed, _ = original_threads(
                threads_fake.url, calls, concurrency, fake.messages
            )
        assert threads_failed == 0
        walls.append(wall)
        threads_walls.append(threads_wall)
        phases.append(fake.phase)
        bases.append(base_fake.phase)
    wall, dry_wall, base_wall = median(walls), median(dry_walls), median(base_walls)
    threads_wall, phase, base = median(threads_walls), median(phases), median(bases)
    costs = [w - d for w, d in zip(walls, dry_walls, strict=True)]  # each create paired with its dry run
    cost = median(costs)
    ideal = math.ceil(calls / concurrency) * latency
    rest = wall - phase
    print(
        f"L={latency}s C={concurrency}: {selected} rows, {calls} distinct calls; ideal "
        f"ceil({calls}/{concurrency}) x {latency} = {ideal:.2f}s ({concurrency / latency:.0f} requests/s); "
        f"medians of {repeat} rounds"
    )
    print(f"  total (facetopt dataset create)   {wall:6.2f}s  (dry run {dry_wall:.2f}s)")
    print(
        f"  create minus --dry-run             {cost:6.2f}s  /ideal {cost / ideal:5.3f}  "
        f"/bare client {cost / base_wall:5.3f}  /original threads {cost / threads_wall:5.3f}"
        f"  (rounds: {', '.join(f'{c:.2f}' for c in costs)})"
    )
    print(
        f"  original threads (sync openai, ThreadPoolExecutor({concurrency}))  {threads_wall:6.2f}s  "
        f"/ideal {threads_wall / ideal:5.3f}"
    )
    print(
        f"  labelling (fake's first->last)     {phase:6.2f}s  /ideal {phase / ideal:5.3f}  "
        f"/bare {phase / base:5.3f}  (peak in flight {fake.peak})"
    )
    print(
        f"  bare client, same calls            {base:6.2f}s  /ideal {base / ideal:5.3f}  "
        f"(client wall {base_wall:.2f}s, peak in flight {base_fake.peak})"
    )
    head, tail = median(heads), median(tails)
    print(
        f"  start to first request             {head:6.2f}s  (dry run {dry_wall:.2f}s: {head - dry_wall:+.2f}s)"
        f"\n  last reply to exit                 {tail:6.2f}s  (committing labels, storing and verifying rows)"
    )
    print(
        f"  CPU: create minus --dry-run        {median(cpus):6.2f}s  (bare client {median(base_cpus):.2f}s;"
        " CPU stays meaningful on a loaded machine, wall time does not)"
    )
    print(f"  ingest + sample (total-labelling)  {rest:6.2f}s  = {spans / rest:,.0f} export spans/s")
    print(
        f"    of which beyond the dry run      {rest - dry_wall:6.2f}s  (client set-up, storing rows, labels)"
    )
    print(f"  peak RSS of the facetopt process   {rss:6.0f} MB")


def _write_export_elsewhere(folder: Path, spans: int) -> tuple[Path, int]:
    """Generate the export in another process, so this one stays small: Linux carries a parent's
    peak RSS over fork and exec into the child's ru_maxrss, which would hide facetopt's own peak."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(write_export, folder, spans, None).result()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=100_000, help="spans in the export (default 100k)")
    parser.add_argument(
        "--latency", type=float, action="append", help="fake latency, seconds (default 0.05 and 1.0)"
    )
    parser.add_argument("--concurrency", type=int, default=128, help="labelling requests in flight (128)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per latency, in turn; medians reported (3)"
    )
    parser.add_argument(
        "--per-bucket",
        type=int,
        default=275,
        help="--positive-limit and --negative-limit (275: about 1000 distinct calls on 100k spans)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facetopt-bench-") as folder:
        started = time.perf_counter()
        part, spans = _write_export_elsewhere(Path(folder), args.spans)
        print(
            f"export: {spans:,} spans, {part.stat().st_size / 1e6:,.0f} MB, "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        measure_dry_run(part, spans, args.per_bucket)
        for latency in args.latency or [0.05, 1.0]:
            if args.concurrency / latency > 200:
                print(f"note: at L={latency}s the Python fake, not the client, bounds labelling")
            measure(part, spans, latency, args.concurrency, args.per_bucket, args.repeat)


if __name__ == "__main__":
    main()
