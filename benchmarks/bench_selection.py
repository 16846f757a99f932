"""Time `selector.selection.select` on synthetic pools and measure its memory.

Usage: .venv/bin/python benchmarks/bench_selection.py [--sizes 1000000 10000000] [--json OUT]

Each (size, case) runs in a fresh subprocess, so one case's allocations never inflate another's
peak. Reported per case: best wall time over --repeat runs, the process's current RSS once the
inputs exist, its peak RSS during `select` alone (Linux: VmHWM, reset via /proc/self/clear_refs
just before the call), the whole process's peak RSS (ru_maxrss, includes input generation),
and numpy's peak traced allocation during one `select` call (tracemalloc). CPU seconds are
reported beside wall seconds because a shared machine inflates the latter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selector.selection import FINGERPRINT_DTYPE, select  # noqa: E402

CASES = {
    "per_problem": {"strategy": "per_problem", "k": 16, "wrong_fraction": 0.8},
    "global": {"strategy": "global", "k": 50_000, "wrong_fraction": 0.8},
    "global_max": {"strategy": "global", "k": 50_000, "wrong_fraction": 0.8, "max_per_problem": 8},
}
SAMPLES_PER_PROBLEM = 1000


def make_pool(n: int, dup_rate: float = 0.02, seed: int = 0) -> dict[str, np.ndarray]:
    """A pool shaped like a real campaign: ~1000 samples a problem, imported problem by problem.

    Scores are products of per-step scores (the solution-score formula), rounded to float32 as a
    PRM emits them, so ties happen; ~70% of answers are wrong and wrong answers score lower on
    average; ``dup_rate`` of samples repeat an earlier sample's steps; 0.1% have no score; 0.5% were
    selected in an earlier generation.
    """
    rng = np.random.default_rng(seed)
    n_problems = max(1, n // SAMPLES_PER_PROBLEM)
    problem = np.sort(rng.integers(0, n_problems, n)).astype(np.int64) + 1000
    order = np.arange(1, n + 1, dtype=np.int64)  # primary keys, in import order
    wrong = rng.random(n) < 0.7
    n_steps = rng.integers(3, 15, n)
    step_quality = np.where(wrong, rng.beta(8, 2, n), rng.beta(30, 1.5, n))
    score = (step_quality**n_steps).astype(np.float32).astype(np.float64)
    del n_steps, step_quality
    score[rng.random(n) < 0.001] = np.nan
    fingerprint = np.frombuffer(rng.bytes(16 * n), dtype=FINGERPRINT_DTYPE).copy()
    # Duplicates: copy steps from the previous sample when it is from the same problem.
    # Duplicates: copy steps from the previous sample when it is from the same problem.
    dup = np.flatnonzero(rng.random(n) < dup_rate)
    dup = dup[(dup > 0) & (problem[dup - 1] == problem[np.maximum(dup, 1)])]
    fingerprint[dup] = fingerprint[dup - 1]
    score[dup] = score[dup - 1]  # the same steps score the same
    excluded = rng.random(n) < 0.005
    return {
        "problem": problem,
        "order": order,
        "score": score,
        "wrong": wrong,
        "fingerprint": fingerprint,
        "excluded": excluded,
    }


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: reset VmHWM to VmRSS
        return True
    except OSError:
        return False


def child(n: int, case: str, repeat: int, dup_rate: float) -> dict:
    pool = make_pool(n, dup_rate)
    kwargs = CASES[case]
    input_mb = sum(a.nbytes for a in pool.values()) / 2**20
    rss_inputs_kib = _status_kib("VmRSS")
    times, cpu_times = [], []
    picks = 0
    peak_select_kib = None
    for _ in range(repeat):
        reset = _reset_peak_rss()
        t0, c0 = time.perf_counter(), time.process_time()
        out = select(**pool, **kwargs)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)  # less sensitive to a busy machine
        picks = len(out)
        hwm = _status_kib("VmHWM") if reset else None
        if hwm is not None:
            peak_select_kib = max(peak_select_kib or 0, hwm)
        del out
    tracemalloc.start()
    select(**pool, **kwargs)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ru_maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "n": n,
        "case": case,
        "params": kwargs,
        "dup_rate": dup_rate,
        "selected": picks,
        "seconds_best": min(times),
        "seconds_all": times,
        "cpu_seconds_best": min(cpu_times),
        "load_average_1min": os.getloadavg()[0],
        "input_mib": round(input_mb, 1),
        "rss_with_inputs_mib": None if rss_inputs_kib is None else round(rss_inputs_kib / 1024, 1),
        "peak_rss_select_mib": None
        if peak_select_kib is None
        else round(peak_select_kib / 1024, 1),
        "peak_rss_process_mib": round(ru_maxrss_kib / 1024, 1),
        "numpy_peak_traced_mib": round(traced_peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dup-rate", type=float, default=0.02, help="share of duplicated steps")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--child", nargs=2, metavar=("N", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.repeat, args.dup_rate)))
        return

    results = []
    header = (
        f"{'n':>11} {'case':<12} {'picks':>8} {'best s':>7} {'cpu s':>6} {'inputs MiB':>10} "
        f"{'RSS+inputs':>10} {'peak RSS sel':>12} {'peak RSS proc':>13} {'np traced':>9}"
    )
    print(header)
    for n in args.sizes:
        for case in args.cases:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(n),
                    case,
                    "--repeat",
                    str(args.repeat),
                    "--dup-rate",
                    str(args.dup_rate),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["peak_rss_children_mib"] = round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            )
            results.append(r)
            print(
                f"{n:>11,} {case:<12} {r['selected']:>8,} {r['seconds_best']:>7.2f} "
                f"{r['cpu_seconds_best']:>6.2f} "
                f"{r['input_mib']:>10} {r['rss_with_inputs_mib']!s:>10} "
                f"{r['peak_rss_select_mib']!s:>12} {r['peak_rss_process_mib']:>13} "
                f"{r['numpy_peak_traced_mib']:>9}",
                flush=True,
            )
    if args.json:
        meta = {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
