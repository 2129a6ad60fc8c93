"""The full parse of today's code against the layout commit's code, in one run.

    python bench/bench_parse_layout.py                       # 20k spans, 5 rounds, against 3f389cc
    python bench/bench_parse_layout.py --spans 100000 --rounds 3

"Full parse" is bench_ingest.py's full pass: every facet span fetched from the local DuckDB source
(`LocalSource.fetch_candidates`) and parsed (`span_from_raw` + `parse_span`). The layout commit's
`src/` is extracted from this repository's history (`git archive`) into a temporary folder; child
processes then alternate A B A B ..., each importing `facetopt` from one `src/` (PYTHONPATH), over
the same generated export. Each child times the fetch and the parse apart, in wall and CPU seconds
(CPU time includes DuckDB's threads, and stays meaningful on a loaded machine; wall time does not),
and hashes every parsed call, so the two versions are also checked to parse identically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYOUT_COMMIT = "3f389cc"  # "Sub-packages: ..." (the layout commit)
MODELS = ["brain-facet-latest", "brain-facet-1"]
WIDE_WINDOW = ("'2000-01-01T00:00:00Z'", "NOW()")  # the generated export is not shifted to "now"


def child(export: Path, expected_src: str) -> dict:
    """Runs with PYTHONPATH=<one src>: fetch every facet span, then parse them all."""
    import facetopt
    from facetopt.clients.local.source import LocalSource

    try:
        from facetopt.facets.data.parsing import parse_span, span_from_raw
    except ModuleNotFoundError:  # the layout commit's code: facets/ was not grouped yet
        from facetopt.facets.parsing import parse_span, span_from_raw  # type: ignore[no-redef]

    where = str(Path(facetopt.__file__).resolve())
    if not where.startswith(str(Path(expected_src).resolve())):
        raise SystemExit(f"imported facetopt from {where}, not from {expected_src}")
    source = LocalSource([export])

    def parse(raws: list[dict]) -> tuple[list, int]:
        calls, rejected = [], 0
        for raw in raws:
            span = span_from_raw(raw)
            if span is None:
                rejected += 1
                continue
            try:
                calls.extend(parse_span(span))
            except ValueError:
                rejected += 1
        return calls, rejected

    # as in bench_ingest.py, the full pass follows a sample pass: one-time costs (importing the SQL
    # rewriter, DuckDB's first read of the file) are not the full pass's
    parse(list(source.fetch_candidates(MODELS, *WIDE_WINDOW, limit=1000)))
    wall, cpu = time.perf_counter, time.process_time
    w0, c0 = wall(), cpu()
    raws = list(
        source.fetch_candidates(MODELS, *WIDE_WINDOW, extra_where_sql=None, root_span_ids=None, limit=None)
    )
    w1, c1 = wall(), cpu()
    calls, rejected = parse(raws)
    w2, c2 = wall(), cpu()
    digest = hashlib.sha256()
    for call in calls:
        digest.update(json.dumps(call.model_dump(), sort_keys=True, default=str).encode())
    return {
        "spans": len(raws),
        "calls": len(calls),
        "rejected": rejected,
        "digest": digest.hexdigest()[:16],
        "fetch_wall": w1 - w0,
        "fetch_cpu": c1 - c0,
        "parse_wall": w2 - w1,
        "parse_cpu": c2 - c1,
    }


def layout_src(into: Path, commit: str) -> tuple[Path | None, str]:
    """The commit's src/ extracted into `into`, or None and why not (no git, no history, shallow clone)."""
    try:
        resolved = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        return None, f"git is not available ({exc})"
    if resolved.returncode != 0:
        return None, f"commit {commit} is not in this repository's history (a shallow clone or no .git)"
    archive = into / "layout.tar"
    with archive.open("wb") as out:
        made = subprocess.run(
            ["git", "-C", str(ROOT), "archive", resolved.stdout.strip(), "src"],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    if made.returncode != 0:
        return None, f"git archive {commit} failed: {made.stderr.decode(errors='replace').strip()}"
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into / "layout", filter="data")
        else:  # Python before 3.11.4: our own archive, trusted
            tar.extractall(into / "layout")  # noqa: S202
    return into / "layout" / "src", resolved.stdout.strip()[:12]


def run_child(src: Path, export: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(export), str(src)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=src.parent)
    if done.returncode != 0:
        raise SystemExit(f"child on {src} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=20_000, help="spans in the generated export")
    parser.add_argument("--rounds", type=int, default=5, help="A B pairs of child processes")
    parser.add_argument("--commit", default=LAYOUT_COMMIT, help="the code to compare against")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return

    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from bench_ingest import write_export

    with tempfile.TemporaryDirectory(prefix="facetopt-bench-parse-") as tmp:
        folder = Path(tmp)
        _, spans = write_export(folder / "export", args.spans, None)
        export = folder / "export"
        theirs, label = layout_src(folder, args.commit)
        sides = {"ours": ROOT / "src"}
        if theirs is None:
            print(f"layout-commit comparison skipped: {label}")
        else:
            sides[f"layout {label}"] = theirs
        print(f"export: {spans:,} spans; {args.rounds} rounds of {' / '.join(sides)} in turn", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in sides}
        for round_index in range(args.rounds):
            for name, src in sides.items():
                result = run_child(src, export)
                results[name].append(result)
                print(
                    f"  round {round_index + 1} {name}: fetch {result['fetch_wall']:.2f} s"
                    f" (cpu {result['fetch_cpu']:.2f}), parse {result['parse_wall']:.2f} s"
                    f" (cpu {result['parse_cpu']:.2f})",
                    flush=True,
                )
    report(results)


def report(results: dict[str, list[dict]]) -> None:
    medians = {}
    for name, runs in results.items():
        first = runs[0]
        med = {key: statistics.median(r[key] for r in runs) for key in first if key.endswith(("wall", "cpu"))}
        med["total_wall"] = statistics.median(r["fetch_wall"] + r["parse_wall"] for r in runs)
        med["total_cpu"] = statistics.median(r["fetch_cpu"] + r["parse_cpu"] for r in runs)
        medians[name] = med
        print(
            f"{name}: {first['spans']:,} facet spans -> {first['calls']:,} calls ({first['rejected']} rejected),"
            f" digest {first['digest']}; medians: fetch {med['fetch_wall']:.2f} s (cpu {med['fetch_cpu']:.2f}),"
            f" parse {med['parse_wall']:.2f} s (cpu {med['parse_cpu']:.2f}),"
            f" full {med['total_wall']:.2f} s (cpu {med['total_cpu']:.2f})"
        )
    if len(results) < 2:
        return
    ours, theirs = (medians[name] for name in results)
    same = len({(runs[0]["calls"], runs[0]["digest"]) for runs in results.values()}) == 1
    print(f"parsed calls identical in both versions: {'yes' if same else 'NO'}")
    for part in ("total", "parse", "fetch"):
        label = "full parse" if part == "total" else part
        print(
            f"{label} ours / layout commit: wall {ours[part + '_wall'] / theirs[part + '_wall']:.3f},"
            f" cpu {ours[part + '_cpu'] / theirs[part + '_cpu']:.3f}"
        )


if __name__ == "__main__":
    main()
