"""Import speed and memory: `import_samples` into PostgreSQL, at two sizes, beside a raw COPY.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x \
       .venv/bin/python benchmarks/bench_import.py [--sizes 20000 100000] [--json OUT]

Synthetic samples of ~15 real step texts (ProcessBench) over 100 problems, each ending in a
"# Answer" step: answers repeat as in a real pool (a few distinct answers per problem, the
right one among them), so grading runs its real code on realistic pairs. Each size is
imported twice into a throwaway database (`stepwise_bench`, created and dropped here), with
grading and without, each in a fresh child process: samples/s and the child's peak RSS.

The limit beside each import is a raw COPY, in the same run, of the very bytes the import
sends (`sample_copy_payloads`, rendered to a file before the clock starts) into the same
table with its indexes and lz4 TOAST, in a transaction rolled back afterwards. The split per
row is the importer's own CPU (parsing, grading, encoding) and its PostgreSQL backend's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_db as bench

N_PROBLEMS = 100
TARGET_RATE = 20_000  # samples/s (issue #16)
TARGET_SHARE = 0.5  # of a raw COPY of the same rows, measured in the same run


def write_files(directory: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    texts = bench.load_step_texts()
    problems = directory / "problems.jsonl"
    with open(problems, "w", encoding="utf-8") as out:
        for p in range(N_PROBLEMS):
            out.write(
                json.dumps(
                    {
                        "unique_id": f"bench/{p}",
                        "problem": f"Problem {p}: " + rng.choice(texts),
                        "ground_truth_answer": f"\\frac{{{p + 1}}}{{{p + 7}}}",
                    }
                )
                + "\n"
            )
    samples = directory / f"samples_{n}.jsonl"
    with open(samples, "w", encoding="utf-8") as out:
        for i in range(n):
            p = i % N_PROBLEMS
            steps = rng.sample(texts, rng.randint(12, 18))
            answer = (
                f"\\frac{{{p + 1}}}{{{p + 7}}}"
                if rng.random() < 0.3
                else rng.choice([str(rng.randint(0, 20)), f"\\frac{{{p + 2}}}{{{p + 7}}}", "x^2"])
            )
            steps.append(f"So the answer is {answer}.\n\n# Answer\n\n{answer}")
            record = {
                "id": f"s{i}",
                "unique_id": f"bench/{p}",
                "steps": steps,
                "generator": "bench",
                "verifier_score": round(rng.random(), 6),
            }
            out.write(json.dumps(record) + "\n")
    return problems, samples


def campaign_with_problems(args: argparse.Namespace):
    from annotate.io import import_problems
    from annotate.models import Campaign

    campaign = Campaign.objects.create(slug=args.campaign)
    with open(args.problems, encoding="utf-8") as handle:
        import_problems(handle, campaign)
    return campaign


def raw_copy_child(args: argparse.Namespace) -> None:
    """Time a COPY of the import's own payload: the server's work alone, nothing parsed."""
    bench.setup_django()
    from django.db import connection, transaction

    from annotate.io import sample_copy_payloads
    from annotate.io.base import copy_statement, use_lz4_toast
    from annotate.io.samples import COPY_COLUMNS
    from annotate.models import Sample

    campaign = campaign_with_problems(args)
    payload = Path(args.samples).with_suffix(f".copy{args.grade}")
    with open(args.samples, encoding="utf-8") as src, open(payload, "wb") as out:
        for chunk in sample_copy_payloads(src, campaign, grade=bool(args.grade)):
            out.write(chunk)
    backend = bench.backend_pid()
    with transaction.atomic(), connection.connection.cursor() as cursor:
        use_lz4_toast(cursor)
        pg_cpu = bench.process_cpu_seconds(backend)
        start = time.perf_counter()
        with (
            open(payload, "rb") as src,
            cursor.copy(copy_statement(Sample._meta.db_table, COPY_COLUMNS)) as copy,
        ):
            while chunk := src.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - start
        pg_cpu = bench.process_cpu_seconds(backend) - pg_cpu
        rows = cursor.rowcount
        transaction.set_rollback(True)  # the limit leaves the table as it found it
    payload.unlink()
    print(
        json.dumps(
            {
                "samples": rows,
                "seconds": round(seconds, 3),
                "samples_per_second": round(rows / seconds, 1),
                "postgres_cpu_seconds": round(pg_cpu, 3),
            }
        )
    )


def child(args: argparse.Namespace) -> None:
    bench.setup_django()
    from annotate.io import import_samples

    campaign = campaign_with_problems(args)
    backend = bench.backend_pid()
    pg_cpu = bench.process_cpu_seconds(backend)
    start = time.perf_counter()
    cpu = time.process_time()
    with open(args.samples, encoding="utf-8") as handle:
        summary = import_samples(handle, campaign, grade=args.grade, processes=os.cpu_count())
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    pg_cpu = bench.process_cpu_seconds(backend) - pg_cpu
    n = summary.created["samples"]
    from annotate.generations import preview_selection

    # The pool query + selector over what was just imported (imported verifier scores).
    select_start = time.perf_counter()
    picked = len(preview_selection(campaign, k=16))
    select_seconds = time.perf_counter() - select_start
    print(
        json.dumps(
            {
                "samples": n,
                "seconds": round(seconds, 3),
                "samples_per_second": round(n / seconds, 1),
                "python_cpu_seconds": round(cpu, 3),
                "postgres_cpu_seconds": round(pg_cpu, 3),
                # Parser and server overlap (two processes): the slower one bounds throughput.
                "cpu_bound_samples_per_second": round(n / max(cpu, pg_cpu, 1e-9), 1),
                "peak_rss_mb": round(bench.peak_rss_mb(), 1),
                "preview_selection_seconds": round(select_seconds, 3),
                "selected": picked,
                "details": summary.details,
            }
        )
    )


def measure(problems: Path, samples: Path, n: int, grade: int) -> dict:
    """The raw COPY limit, then the import, of one file, each in its own child process."""
    args = ["--problems", str(problems), "--samples", str(samples), "--grade", str(grade)]
    script = Path(__file__)
    raw = bench.run_child(script, "--raw", "--campaign", f"raw-{n}-{grade}", *args)
    result = bench.run_child(script, "--campaign", f"bench-{n}-{grade}", *args)
    result["raw_copy"] = raw
    result["share_of_raw_copy"] = round(result["samples_per_second"] / raw["samples_per_second"], 3)
    result["us_per_row"] = {
        "python": round(result["python_cpu_seconds"] / n * 1e6, 1),
        "postgres": round(result["postgres_cpu_seconds"] / n * 1e6, 1),
        "raw_copy_postgres": round(raw["postgres_cpu_seconds"] / n * 1e6, 1),
    }
    result["met"] = (
        result["samples_per_second"] >= TARGET_RATE and result["share_of_raw_copy"] >= TARGET_SHARE
    )
    return result


def describe(result: dict) -> str:
    raw, us = result["raw_copy"], result["us_per_row"]
    return (
        f"grading={'on ' if result['grading'] else 'off'}"
        f" import {result['samples_per_second']:>7,.0f}/s"
        f" | raw COPY {raw['samples_per_second']:>7,.0f}/s"
        f" | {result['share_of_raw_copy']:.0%} of it (target {TARGET_SHARE:.0%} and"
        f" {TARGET_RATE:,}/s: {'met' if result['met'] else 'missed'})"
        f" | µs/row: python {us['python']:.0f}, postgres {us['postgres']:.0f}"
        f" (raw COPY's {us['raw_copy_postgres']:.0f})"
        f" | {result['seconds']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MiB"
        f" | select dry run {result['preview_selection_seconds']:.2f} s"
        f" | load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--json", dest="json_out", default=None, help="write results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--campaign", help=argparse.SUPPRESS)
    parser.add_argument("--problems", help=argparse.SUPPRESS)
    parser.add_argument("--samples", help=argparse.SUPPRESS)
    parser.add_argument("--grade", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (raw_copy_child if args.raw else child)(args)
        return

    bench.bench_url()  # fail early without PostgreSQL
    results = []
    bench.create_database()
    try:
        os.environ["DATABASE_URL"], original = bench.bench_url(), os.environ["DATABASE_URL"]
        bench.setup_django()
        bench.create_tables()
        os.environ["DATABASE_URL"] = original
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.sizes:
                problems, samples = write_files(Path(tmp), n)
                size_mb = samples.stat().st_size / 2**20
                for grade in (1, 0):
                    result = measure(problems, samples, n, grade)
                    result.update(size=n, grading=bool(grade), file_mb=round(size_mb, 1))
                    results.append(result)
                    print(f"{n:>8} samples ({size_mb:6.1f} MiB) {describe(result)}", flush=True)
                samples.unlink()
    finally:
        from django.db import connections

        connections.close_all()
        bench.drop_database()
    report = {
        "benchmark": "import_samples",
        "target_samples_per_second": TARGET_RATE,
        "target_share_of_raw_copy": TARGET_SHARE,
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "runs": results,
    }
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
