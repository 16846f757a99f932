"""`make bench`: every benchmark, each in its own process, results in bench-results/*.json.

Database benchmarks need PostgreSQL: DATABASE_URL (the Makefile defaults it to the local
server). Speed targets live here, not in the test suite; each script prints its own table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-results"

BENCHMARKS = [
    ("selection", ["bench_selection.py"]),
    ("scoring", ["bench_scoring.py"]),
    ("import", ["bench_import.py"]),
    ("export", ["bench_export.py"]),
    ("labeling_load", ["bench_labeling_load.py", "--duration", "60"]),
    # Past saturation: four times the target's labelers, to see what slows and that nothing
    # is lost.
    ("labeling_load_200", ["bench_labeling_load.py", "--users", "200", "--duration", "60"]),
    # Label Studio installed into bench-results/.peer/ on first use (a few minutes, ~1 GB).
    ("peer_label_studio", ["bench_peer_label_studio.py"]),
    ("generation", ["bench_generation.py"]),
    # Last: it builds a 12M-sample campaign (~20 GB, ~15 min here) and drops it afterwards.
    ("scale", ["bench_scale.py"]),
]


def main(argv: list[str]) -> int:
    only = set(argv)
    OUT.mkdir(exist_ok=True)
    failed = []
    for name, command in BENCHMARKS:
        if only and name not in only:
            continue
        script, *args = command
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / script),
                *args,
                "--json",
                str(OUT / f"{name}.json"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        print(f"--- {name}: exit {result.returncode} in {time.monotonic() - started:.0f} s")
        if result.returncode:
            failed.append(name)
    print(f"\nResults in {OUT}/" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
