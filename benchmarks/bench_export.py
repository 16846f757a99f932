"""Export speed and memory: PRM800K records from PostgreSQL, at two sizes, beside COPY TO.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/x \
       .venv/bin/python benchmarks/bench_export.py [--sizes 20000 100000] [--json OUT]
       [--kinds native imported] [--modes copy command api] [--profile FILE]

For each size, a campaign of that many finished labels on samples of ~15 real step texts
(ProcessBench), loaded with COPY into a throwaway database (`stepwise_bench`, created and
dropped here), in two flavours: native labels (StepRating rows, rated up to a first error)
and labels imported from PRM800K (step records kept verbatim). Each run happens in a fresh
child process writing to a temporary file: records/s and the child's peak RSS, for

- `copy`: the limit, PostgreSQL's own `COPY (SELECT …) TO STDOUT` of the rows the export
  reads (each finished label joined with its labeler, generation, sample steps, problem and
  its step ratings aggregated per label), streamed to the file by psycopg;
- `command`: `manage.py export_prm800k --campaign SLUG -o FILE` (call_command);
- `api`: GET /api/v1/campaigns/SLUG/exports/prm800k/ through Django's test client as a staff
  user (production settings), the streaming response's chunks written to the file.

Each export figure is printed beside the COPY figure of the same run, with the ratio.
`--profile FILE` also runs the command's export under cProfile at the first size and writes
its top functions (by own time) to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_db as bench

# Its own database by default: it runs beside bench_import.py.
bench.BENCH_DB = os.environ.get("STEPWISE_BENCH_DB", "stepwise_bench_export")
N_PROBLEMS = 100


def copy_objects(model, objects: Iterable) -> int:
    """COPY unsaved model instances (all concrete fields but the id) in one stream."""
    from django.db import connection

    from annotate.io.base import copy_statement

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = copy_statement(model._meta.db_table, [f.column for f in fields])
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objects:
            row = []
            for field in fields:
                value = field.pre_save(obj, add=True)
                row.append(field.get_db_prep_save(value, connection))
            copy.write_row(row)
            count += 1
    return count


def ids_of(model, campaign_field: str, campaign) -> list[int]:
    return list(
        model.objects.filter(**{campaign_field: campaign})
        .order_by("id")
        .values_list("id", flat=True)
    )


def populate(n: int, kind: str, texts: list[str], rng: random.Random) -> str:
    """A campaign with n finished labels of one kind; returns its slug."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotate.models import (
        Assignment,
        Campaign,
        Generation,
        Label,
        Problem,
        Sample,
        StepRating,
    )
    from selector.selection import steps_fingerprint

    slug = f"export-{kind}-{n}"
    with transaction.atomic():
        campaign = Campaign.objects.create(slug=slug)
        problems = Problem.objects.bulk_create(
            Problem(
                campaign=campaign,
                unique_id=f"{slug}/{p}",
                problem=f"Problem {p}: " + rng.choice(texts),
                ground_truth_answer=str(p),
                ground_truth_solution=rng.choice(texts),
            )
            for p in range(N_PROBLEMS)
        )
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"{slug}-labeler-{i}") for i in range(50)
        )
        generation = Generation.objects.create(campaign=campaign, number=0, status="open")
        step_lists = []

        def samples() -> Iterator:
            for i in range(n):
                steps = rng.sample(texts, rng.randint(12, 18))
                steps.append(f"# Answer\n\n{i % 7}")
                step_lists.append(len(steps))
                yield Sample(
                    campaign=campaign,
                    problem=problems[i % N_PROBLEMS],
                    external_id=f"s{i}",
                    steps=steps,
                    answer=str(i % 7),
                    is_correct=False,
                    steps_hash=steps_fingerprint(steps).hex(),
                    verifier_score=rng.random(),
                )

        copy_objects(Sample, samples())
        sample_ids = ids_of(Sample, "campaign", campaign)
        finished = datetime(2024, 1, 1, tzinfo=UTC)
        first_error = [rng.randint(1, length) for length in step_lists]  # rated steps
        if kind == "native":
            copy_objects(
                Assignment,
                (
                    Assignment(
                        generation=generation,
                        sample_id=sid,
                        labeler=users[i % len(users)],
                        state="submitted",
                    )
                    for i, sid in enumerate(sample_ids)
                ),
            )
            assignment_ids = ids_of(Assignment, "generation__campaign", campaign)
            copy_objects(
                Label,
                (
                    Label(
                        assignment_id=aid,
                        sample_id=sid,
                        labeler=users[i % len(users)],
                        prm800k_generation=0,
                        finish_reason="found_error",
                        total_time_ms=60_000 + i,
                        finished_at=finished,
                    )
                    for i, (aid, sid) in enumerate(zip(assignment_ids, sample_ids, strict=True))
                ),
            )
            label_ids = ids_of(Label, "sample__campaign", campaign)
            copy_objects(
                StepRating,
                (
                    StepRating(
                        label_id=lid,
                        step=s,
                        rating=-1 if s == first_error[i] - 1 else rng.choice((0, 1, 1)),
                        flagged=False,
                    )
                    for i, lid in enumerate(label_ids)
                    for s in range(first_error[i])
                ),
            )
        else:
            steps_of = dict(Sample.objects.filter(campaign=campaign).values_list("id", "steps"))

            def imported() -> Iterator:
                for i, sid in enumerate(sample_ids):
                    rated = steps_of[sid][: first_error[i]]
                    records = [
                        {
                            "completions": [
                                {
                                    "text": text,
                                    "rating": -1 if s == len(rated) - 1 else 1,
                                    "flagged": None,
                                }
                            ],
                            "human_completion": None,
                            "chosen_completion": None if s == len(rated) - 1 else 0,
                        }
                        for s, text in enumerate(rated)
                    ]
                    yield Label(
                        sample_id=sid,
                        labeler_uuid="e90a38f3-3135-4465-87af-3e6322e3d772",
                        timestamp="2022-07-30T23:23:32.118856",
                        prm800k_generation=6,
                        finish_reason="found_error",
                        total_time_ms=60_000 + i,
                        finished_at=finished,
                        prm800k_steps=records,
                        question_extra={"phase": 2},
                    )

            copy_objects(Label, imported())
    return slug


STAFF = "bench-staff"


def copy_sql() -> str:
    """The baseline: one COPY TO of the rows the export reads, one row per finished label."""
    from django.contrib.auth import get_user_model

    from annotate.models import Assignment, Generation, Label, Problem, Sample, StepRating

    t = {
        model.__name__: model._meta.db_table
        for model in (Assignment, Generation, Label, Problem, Sample, StepRating)
    }
    users = get_user_model()._meta.db_table
    return f"""COPY (
        SELECT l.id, l.labeler_uuid, u.username, l.timestamp, l.finished_at,
               COALESCE(g.number, l.prm800k_generation), l.is_quality_control,
               l.is_initial_screening, l.finish_reason, l.total_time_ms,
               l.prm800k_steps::text, l.question_extra::text, s.steps::text, s.answer,
               s.verifier_score, p.problem, p.ground_truth_answer, p.ground_truth_solution,
               r.ratings
        FROM {t["Label"]} l
        JOIN {t["Sample"]} s ON s.id = l.sample_id
        JOIN {t["Problem"]} p ON p.id = s.problem_id
        LEFT JOIN {users} u ON u.id = l.labeler_id
        LEFT JOIN {t["Assignment"]} a ON a.id = l.assignment_id
        LEFT JOIN {t["Generation"]} g ON g.id = a.generation_id
        LEFT JOIN LATERAL (
            SELECT array_agg(ARRAY[r.step, r.rating, r.flagged::int] ORDER BY r.step) AS ratings
            FROM {t["StepRating"]} r WHERE r.label_id = l.id
        ) r ON true
        WHERE s.campaign_id = %s AND l.finish_reason IS NOT NULL
        ORDER BY l.id
    ) TO STDOUT"""


def run_copy(campaign, out) -> int:
    """COPY the baseline rows into `out` (binary file); returns the rows written."""
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(copy_sql() % int(campaign.pk)) as copy:
            for block in copy:
                out.write(block)
        return cursor.cursor.rowcount


def run_command(campaign, out_path: str) -> int:
    from django.core.management import call_command

    call_command("export_prm800k", "--campaign", campaign.slug, "-o", out_path, verbosity=0)
    with open(out_path, "rb") as handle:
        return sum(1 for _ in handle)


def get_api(campaign, query: str = ""):
    """The API export's streaming response, for the staff user."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username=STAFF))
    url = f"/api/v1/campaigns/{campaign.slug}/exports/prm800k/{query}"
    response = client.get(url, secure=True)
    assert response.status_code == 200 and response.streaming, response.status_code
    return response


def run_api(campaign, out) -> int:
    """GET the API export; the streamed chunks go to `out` (binary file)."""
    count = 0
    for chunk in get_api(campaign).streaming_content:
        out.write(chunk)
        count += chunk.count(b"\n")
    return count


def profile_export(campaign, out_path: str, report: str) -> None:
    """cProfile of the export function alone, top functions by own time into `report`."""
    import cProfile
    import io
    import pstats

    from annotate.io.prm800k import export_prm800k

    profiler = cProfile.Profile()
    with open(out_path, "w", encoding="utf-8") as out:
        profiler.runcall(export_prm800k, out, campaign)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    Path(report).write_text(text.getvalue())


def child(args: argparse.Namespace) -> None:
    if args.mode == "api":  # production settings, as a deployed server runs the view
        os.environ.update(
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY="bench-export-not-a-secret-" + "x" * 40,
            DJANGO_ALLOWED_HOSTS="testserver",
        )
    bench.setup_django()
    from annotate.models import Campaign

    campaign = Campaign.objects.get(slug=args.campaign)
    if args.mode == "profile":
        profile_export(campaign, args.out, args.report)
        print(json.dumps({}))
        return
    if args.mode == "api":  # warm, as a running server is: an empty export (no screening)
        b"".join(get_api(campaign, "?generation=-1").streaming_content)
    backend = bench.backend_pid()
    pg_cpu = bench.process_cpu_seconds(backend)
    start = time.perf_counter()
    cpu = time.process_time()
    if args.mode == "command":
        count = run_command(campaign, args.out)
    else:
        with open(args.out, "wb") as out:
            count = (run_copy if args.mode == "copy" else run_api)(campaign, out)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    pg_cpu = bench.process_cpu_seconds(backend) - pg_cpu
    print(
        json.dumps(
            {
                "records": count,
                "output_mb": round(os.path.getsize(args.out) / 2**20, 1),
                "seconds": round(seconds, 3),
                "records_per_second": round(count / seconds, 1),
                "python_cpu_seconds": round(cpu, 3),
                "postgres_cpu_seconds": round(pg_cpu, 3),
                "cpu_bound_records_per_second": round(count / max(cpu, pg_cpu, 1e-9), 1),
                "peak_rss_mb": round(bench.peak_rss_mb(), 1),
            }
        )
    )


def describe(n: int, kind: str, mode: str, result: dict, limit: dict | None) -> str:
    line = (
        f"{n:>8} {kind:8} {mode:7} {result['records_per_second']:>9,.0f} records/s"
        f" (CPU-bound {result['cpu_bound_records_per_second']:,.0f}/s:"
        f" python {result['python_cpu_seconds']:.1f} s,"
        f" postgres {result['postgres_cpu_seconds']:.1f} s)"
        f"  {result['seconds']:6.2f} s  {result['output_mb']:.0f} MiB"
        f"  peak RSS {result['peak_rss_mb']:.0f} MiB"
    )
    if limit is not None:
        line += (
            f"  | COPY TO {limit['records_per_second']:,.0f}/s: ratio {result['ratio_to_copy']:.2f}"
        )
    return line


def measure(n: int, kind: str, slug: str, modes: list[str], tmp: Path) -> list[dict]:
    """Each mode in its own child, COPY first so every export is compared with it."""
    results: list[dict] = []
    limit = None
    for mode in modes:
        out = tmp / f"{slug}.{mode}"
        result = bench.run_child(
            Path(__file__), "--mode", mode, "--campaign", slug, "--out", str(out)
        )
        out.unlink()
        result.update(size=n, kind=kind, mode=mode, load=Path("/proc/loadavg").read_text()[:14])
        if mode == "copy":
            limit = result
        elif limit is not None:
            result["copy_records_per_second"] = limit["records_per_second"]
            result["ratio_to_copy"] = round(
                result["records_per_second"] / limit["records_per_second"], 3
            )
        results.append(result)
        print(describe(n, kind, mode, result, None if mode == "copy" else limit), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=["native", "imported"])
    parser.add_argument("--modes", nargs="+", default=["copy", "command", "api"])
    parser.add_argument("--profile", default=None, help="cProfile report of the export here")
    parser.add_argument("--json", dest="json_out", default=None, help="write results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--campaign", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    os.environ.setdefault("DJANGO_DEBUG", "true")  # a throwaway database: development settings
    original = os.environ.get("DATABASE_URL", "")
    bench.bench_url()  # fail early without PostgreSQL
    results = []
    bench.create_database()
    try:
        bench.setup_django()
        bench.create_tables()
        os.environ["DATABASE_URL"] = original
        from django.contrib.auth import get_user_model

        get_user_model().objects.create_user(STAFF, is_staff=True)
        texts = bench.load_step_texts()
        rng = random.Random(0)
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.sizes:
                for kind in args.kinds:
                    start = time.perf_counter()
                    slug = populate(n, kind, texts, rng)
                    setup = time.perf_counter() - start
                    from django.db import connection

                    with connection.cursor() as cursor:
                        cursor.execute("ANALYZE")  # planner statistics, as autovacuum would
                    print(f"{n:>8} {kind:8} set up in {setup:.0f} s", flush=True)
                    results.extend(measure(n, kind, slug, args.modes, Path(tmp)))
                    if args.profile and n == args.sizes[0]:
                        report = f"{args.profile}.{kind}.txt"
                        out = Path(tmp) / f"{slug}.profile"
                        bench.run_child(
                            Path(__file__),
                            "--mode",
                            "profile",
                            "--campaign",
                            slug,
                            "--out",
                            str(out),
                            "--report",
                            report,
                        )
                        out.unlink()
                        print(f"cProfile of the {kind} export: {report}", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        bench.drop_database()
    report = {
        "benchmark": "export_prm800k",
        "target_records_per_second": 20_000,
        "target_ratio_to_copy": 0.5,
        "runs": results,
    }
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
