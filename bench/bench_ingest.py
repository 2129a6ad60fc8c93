"""Ingest benchmark of the local span source: NDJSON export -> DuckDB -> candidate spans -> parsed calls.

    python bench/bench_ingest.py                 # 100k spans
    python bench/bench_ingest.py --spans 20000
    python bench/bench_ingest.py --gb 1          # a ~1 GB export by repetition: peak RSS must stay < 400 MB

The export is generated first (same shapes as the bundled sample), then a child process ingests it, so
the generator's memory does not count in the peak RSS the child reports (resource.getrusage ru_maxrss).
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

WIDE_WINDOW = ("'2000-01-01T00:00:00Z'", "NOW()")  # the generated export is not shifted to "now"
MODELS = ["brain-facet-latest", "brain-facet-1"]


def write_export(folder: Path, spans: int, gigabytes: float | None) -> tuple[Path, int]:
    """Write `spans` span rows (repeated with fresh ids up to `gigabytes`) as a `bt sync pull`-style part."""
    from facetopt.sample.generate import generate_lines

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


def ingest(paths: list[Path], limit: int | None) -> dict:
    """Runs in the child: open, count, fetch and parse candidates, look up final facets."""
    from facetopt.clients.local_source import LocalSource

    try:
        from facetopt.facets.parsing import parse_span, span_from_raw
    except ImportError:  # parsing not written yet: measure the fetch alone
        parse_span = span_from_raw = None

    started = time.perf_counter()
    source = LocalSource(paths)
    opened = time.perf_counter()
    rows, calls, failures, roots = 0, 0, 0, set()
    for raw in source.fetch_candidates(MODELS, *WIDE_WINDOW, extra_where_sql=None, root_span_ids=None, limit=limit):
        rows += 1
        roots.add(raw["root_span_id"])
        if parse_span is not None:
            span = span_from_raw(raw)
            try:
                calls += len(parse_span(span)) if span is not None else 0
            except ValueError:
                failures += 1
    fetched = time.perf_counter()
    # final facets are looked up for the sampled traces only, as dataset create does
    sampled = sorted(roots)[:1000]
    facets = len(source.fetch_final_facets(sampled))
    looked_up = time.perf_counter()
    counted = (source.rows_read, source.skipped_lines, source.rows_without_ids)
    finished = time.perf_counter()
    return {
        "candidate_rows": rows,
        "parsed_calls": calls,
        "parse_failures": failures,
        "final_facet_rows": facets,
        "rows_read": counted[0],
        "skipped_lines": counted[1],
        "rows_without_ids": counted[2],
        "seconds_open": opened - started,
        "seconds_fetch_parse": fetched - opened,
        "seconds_final_facets": looked_up - fetched,
        "seconds_counts": finished - looked_up,
        "seconds_total": finished - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000, help="spans generated (before repetition)")
    parser.add_argument("--gb", type=float, default=None, help="repeat the spans until the export is this many GB")
    parser.add_argument("--limit", type=int, default=None, help="candidate limit (default: none, every facet span)")
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
        command = [sys.executable, __file__, "--child", tmp]
        if args.limit is not None:
            command += ["--limit", str(args.limit)]
        child = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), check=False)
        if child.returncode != 0:
            sys.exit(f"ingest failed:\n{child.stderr}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    scan = result["seconds_open"] + result["seconds_fetch_parse"]
    print(f"candidates: {result['candidate_rows']:,} facet spans -> {result['parsed_calls']:,} calls "
          f"({result['parse_failures']} unparseable); final facets rows: {result['final_facet_rows']:,}")
    print(f"counts: rows read {result['rows_read']:,}, skipped lines {result['skipped_lines']}, "
          f"rows without ids {result['rows_without_ids']}")
    print(f"open {result['seconds_open']:.2f} s, fetch+parse {result['seconds_fetch_parse']:.2f} s, "
          f"final facets {result['seconds_final_facets']:.2f} s, counts {result['seconds_counts']:.2f} s, "
          f"total {result['seconds_total']:.2f} s")
    print(f"ingest: {spans / scan:,.0f} spans/s ({size_mb / scan:,.0f} MB/s) through open+fetch+parse; "
          f"{spans / result['seconds_total']:,.0f} spans/s including final facets and counts")
    print(f"peak RSS: {result['peak_rss_mb']:.0f} MB (target < 400 MB for a 1 GB export)")


if __name__ == "__main__":
    main()
