"""Run every benchmark once at its default size; each prints its own ratios against a baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = (
    "bench_ingest.py",
    "bench_parse_layout.py",
    "bench_labelling.py",
    "bench_eval.py",
    "bench_dataset_create.py",
)


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = 0
    for name in BENCHES:
        print(f"== {name}", flush=True)
        failed += subprocess.call([sys.executable, str(here / name), *sys.argv[1:]], cwd=here.parent) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
