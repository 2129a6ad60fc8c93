"""`facetopt --help` against a minimal Typer app's `--help`, in one run: alternating child
processes, medians, the ratio, and the load average beside it (a loaded machine slows both).

    python bench/bench_startup.py [--runs 15] [--max-ratio 1.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The floor: what any Typer CLI with a few commands pays to print its rich help.
MINIMAL_APP = '''
import typer

app = typer.Typer(help="A minimal Typer app.", no_args_is_help=True, add_completion=False)


@app.command()
def hello(name: str = typer.Option("world", help="Who to greet.")) -> None:
    """Say hello."""
    typer.echo(f"hello {name}")


@app.command()
def bye() -> None:
    """Say goodbye."""


if __name__ == "__main__":
    app()
'''


def facetopt_argv() -> list[str]:
    script = Path(sys.executable).parent / "facetopt"
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "facetopt.cli", "--help"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or b"Usage" not in result.stdout:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="child processes of each (default 15)")
    parser.add_argument("--max-ratio", type=float, default=None, help="exit 1 above this ratio")
    options = parser.parse_args()
    env = {**os.environ, "COLUMNS": "80", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        minimal = Path(folder) / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        commands = {"minimal": [sys.executable, str(minimal), "--help"], "facetopt": facetopt_argv()}
        for argv in commands.values():  # warm the file cache and the bytecode of both
            timed(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.runs):
            for name, argv in commands.items():
                times[name].append(timed(argv, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["facetopt"] / medians["minimal"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"startup: {options.runs} alternating runs of each, median wall time of `--help`")
    for name, value in medians.items():
        spread = f"{min(times[name]) * 1000:.0f}-{max(times[name]) * 1000:.0f}"
        print(f"  {name:<9} {value * 1000:6.0f} ms  (range {spread} ms)")
    print(f"  ratio facetopt/minimal: {ratio:.2f}x  (load average {load:.2f} on {os.cpu_count()} cores)")
    if options.max_ratio is not None and ratio > options.max_ratio:
        print(f"  above {options.max_ratio}x")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
