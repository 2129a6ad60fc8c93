"""Ingest benchmark of the local span source: NDJSON export -> DuckDB -> candidate spans -> parsed calls.

    python bench/bench_ingest.py                 # 100k spans
    python bench/bench_ingest.py --spans 20000
    python bench/bench_ingest.py --gb 1          # a ~1 GB export by repetition: peak RSS must stay < 400 MB

The export is generated first (same shapes as the bundled sample), then a child process ingests it, so
the generator's memory does not count in the peak RSS the child reports (its own VmHWM: ru_maxrss would
carry the parent's peak across exec).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

WIDE_WINDOW = ("'2000-01-01T00:00:00Z'", "NOW()")  # the generated export is not shifted to "now"
MODELS = ["brain-facet-latest", "brain-facet-1"]


def write_export(folder: Path, spans: int, gigabytes: float | None) -> tuple[Path, int]:
    """Write `spans` span rows (repeated with fresh ids up to `gigabytes`) as a `bt sync pull`-style part."""
    from tests.sample.generate import generate_lines

    part = folder / "project_logs_bench" / "0" / "data" / "part-000001.jsonl"
    part.parent.mkdir(parents=True)
    base = []
    for line in generate_lines(trace_count=spans // 5 + 1, seed=11):
        base.append(line)
        if len(base) >= spans:
            break
    written = 0
    with part.open("w", encoding="utf-8") as out:
        out.write("\n".join(base) + "\n")
        written += len(base)
        copy = 1
        while gigabytes is not None and out.tell() < gigabytes * 1e9:
            prefix = f"c{copy}-"
            for line in base:
                out.write(_with_prefixed_ids(line, prefix) + "\n")
            written += len(base)
            copy += 1
    return part, written


def _with_prefixed_ids(line: str, prefix: str) -> str:
    for key in ('"id":"', '"root_span_id":"', '"span_id":"', '"span_parents":["'):
        line = line.replace(key, key + prefix)
    return line


def peak_rss_mb() -> float:
    """This process's own high-water RSS. Linux keeps ru_maxrss across exec, so a child started by a
    big parent would report the parent's peak; VmHWM belongs to this address space alone."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest(paths: list[Path], limit: int) -> dict:
    """Runs in the child: open the export, then two passes over it.

    sample: what dataset create does, the newest `limit` facet spans parsed and their final facets;
    full: every facet span in the export fetched and parsed (the streaming path at its widest).
    """
    from facetopt.clients.local.source import LocalSource

    try:
        from facetopt.facets.data.parsing import parse_span, span_from_raw
    except ImportError:  # parsing not written yet: measure the fetch alone
        parse_span = span_from_raw = None

    def fetch_and_parse(source: LocalSource, limit: int | None) -> tuple[int, int, set[str]]:
        rows, calls, roots = 0, 0, set()
        for raw in source.fetch_candidates(
            MODELS, *WIDE_WINDOW, extra_where_sql=None, root_span_ids=None, limit=limit
        ):
            rows += 1
            roots.add(raw["root_span_id"])
            span = span_from_raw(raw) if span_from_raw is not None else None
            if span is not None:
                try:
                    calls += len(parse_span(span))
                except ValueError:
                    pass
        return rows, calls, roots

    clock = time.perf_counter
    started = clock()
    source = LocalSource(paths)
    counts = (source.rows_read, source.skipped_lines, source.rows_without_ids)
    opened = clock()
    sample_rows, sample_calls, roots = fetch_and_parse(source, limit)
    facet_rows = len(source.fetch_final_facets(sorted(roots)))
    sampled = clock()
    full_rows, full_calls, _ = fetch_and_parse(source, None)
    finished = clock()
    return {
        "rows_read": counts[0],
        "skipped_lines": counts[1],
        "rows_without_ids": counts[2],
        "sample_rows": sample_rows,
        "sample_calls": sample_calls,
        "final_facet_rows": facet_rows,
        "full_rows": full_rows,
        "full_calls": full_calls,
        "seconds_open_and_count": opened - started,
        "seconds_sample": sampled - opened,
        "seconds_full": finished - sampled,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=100_000, help="spans generated (before repetition)")
    parser.add_argument(
        "--gb", type=float, default=None, help="repeat the spans until the export is this many GB"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=1000,
        help="candidate limit of the sample pass (dataset create's default)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(ingest([Path(p) for p in args.child], args.limit)))
        return

    with tempfile.TemporaryDirectory(prefix="facetopt-bench-") as tmp:
        started = time.perf_counter()
        part, spans = write_export(Path(tmp), args.spans, args.gb)
        size_mb = part.stat().st_size / 1e6
        print(f"export: {spans:,} spans, {size_mb:,.0f} MB, written in {time.perf_counter() - started:.1f} s")
        command = [sys.executable, __file__, "--child", tmp, "--limit", str(args.limit)]
        child = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), check=False)
        if child.returncode != 0:
            sys.exit(f"ingest failed:\n{child.stderr}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    r = result
    print(
        f"counts: rows read {r['rows_read']:,}, skipped lines {r['skipped_lines']}, "
        f"rows without ids {r['rows_without_ids']} ({r['seconds_open_and_count']:.2f} s to open and count)"
    )
    print(
        f"sample (limit {args.limit}, as dataset create): {r['sample_rows']:,} spans"
        f" -> {r['sample_calls']:,} calls, "
        f"{r['final_facet_rows']:,} final facet rows in {r['seconds_sample']:.2f} s = "
        f"{spans / r['seconds_sample']:,.0f} export spans/s"
    )
    print(
        f"full (every facet span fetched and parsed): {r['full_rows']:,} spans -> {r['full_calls']:,} calls "
        f"in {r['seconds_full']:.2f} s = {spans / r['seconds_full']:,.0f} export spans/s, "
        f"{r['full_rows'] / r['seconds_full']:,.0f} facet spans parsed/s"
    )
    print(f"peak RSS of the ingesting process: {r['peak_rss_mb']:.0f} MB (target < 400 MB for a 1 GB export)")


if __name__ == "__main__":
    main()
