"""Import speed and memory: `import_samples` into PostgreSQL, at two sizes.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x \
       .venv/bin/python benchmarks/bench_import.py [--sizes 20000 100000] [--json OUT]

Synthetic samples of ~15 real step texts (ProcessBench) over 100 problems, each ending in a
"# Answer" step: answers repeat as in a real pool (a few distinct answers per problem, the
right one among them), so grading runs its real code on realistic pairs. Each size is
imported twice into a throwaway database (`stepwise_bench`, created and dropped here), with
grading and without, each in a fresh child process: samples/s and the child's peak RSS.
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


def child(args: argparse.Namespace) -> None:
    bench.setup_django()
    from annotate.io import import_problems, import_samples
    from annotate.models import Campaign

    campaign = Campaign.objects.create(slug=args.campaign)
    with open(args.problems, encoding="utf-8") as handle:
        import_problems(handle, campaign)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--json", dest="json_out", default=None, help="write results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--campaign", help=argparse.SUPPRESS)
    parser.add_argument("--problems", help=argparse.SUPPRESS)
    parser.add_argument("--samples", help=argparse.SUPPRESS)
    parser.add_argument("--grade", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
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
                    result = bench.run_child(
                        Path(__file__),
                        "--campaign",
                        f"bench-{n}-{grade}",
                        "--problems",
                        str(problems),
                        "--samples",
                        str(samples),
                        "--grade",
                        str(grade),
                    )
                    result.update(size=n, grading=bool(grade), file_mb=round(size_mb, 1))
                    results.append(result)
                    print(
                        f"{n:>8} samples ({size_mb:6.1f} MiB) grading={'on ' if grade else 'off'}"
                        f" {result['samples_per_second']:>9,.0f} samples/s"
                        f" (CPU-bound {result['cpu_bound_samples_per_second']:,.0f}/s:"
                        f" python {result['python_cpu_seconds']:.1f} s,"
                        f" postgres {result['postgres_cpu_seconds']:.1f} s)"
                        f"  {result['seconds']:7.2f} s  peak RSS {result['peak_rss_mb']:.0f} MiB"
                        f"  (then select dry run: {result['preview_selection_seconds']:.2f} s)",
                        flush=True,
                    )
                samples.unlink()
    finally:
        from django.db import connections

        connections.close_all()
        bench.drop_database()
    report = {"benchmark": "import_samples", "target_samples_per_second": 20_000, "runs": results}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
