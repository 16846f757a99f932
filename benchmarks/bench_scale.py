"""PRM800K scale: a campaign of 12,000 problems × 1,000 samples (12M) with scores, and what a
lead and a labeler get at that size.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
       .venv/bin/python benchmarks/bench_scale.py [--problems 12000] [--per-problem 1000]
       [--reuse] [--keep] [--json OUT]

1. Build (skipped with --reuse when the database already holds the campaign): a throwaway
   database (`STEPWISE_SCALE_DB`, default `stepwise_scale`) with the tables built from the
   models; problems, samples and one checkpoint's scores written by `INSERT … SELECT` over
   `generate_series` on two connections at once (the bulk path: no per-row importer), with
   the sample and score tables' secondary indexes and foreign keys dropped during the load and
   rebuilt after, then `VACUUM ANALYZE`. Each sample's steps are a real ProcessBench
   solution's (1,000 of them, cycled), so row width and TOAST behave as with real data; ~30 %
   of the samples are graded correct; the verifier score and the checkpoint's scores are
   pseudo-random per sample.
2. Measure, each in a fresh child process (peak RSS is its own):
   - `select --dry-run` end to end, as the lead runs it (`manage.py select`), imported scores
     and the checkpoint's: wall time and peak RSS against the limit (< 10 s, < 2 GB);
   - the split inside it: loading the pool from PostgreSQL vs `selector.select_arms`;
   - the generation pipeline: `open_generation` on the checkpoint's scores (it writes the
     generation, its selections and assignment slots);
   - a labeler's next task (POST /next/ and the task page it redirects to) and a rating POST
     on that open generation, through Django's test client: p50/p95 against 100 ms / 50 ms;
   - the lead's pages: the dashboard, the campaign page, and the admin's sample, problem,
     score and assignment lists (≤ 500 ms each);
   - the database size per sample (heap, TOAST and indexes of every table, ÷ samples).
3. Drop the database unless --keep (a 12M build takes minutes and ~20 GB: keep it to rerun the
   measurements with --reuse).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_db as bench
from bench_labeling_load import percentile

bench.BENCH_DB = os.environ.get("STEPWISE_SCALE_DB", "stepwise_scale")
SLUG = "scale"
LABELERS = 40
SELECT_LIMIT_S, SELECT_LIMIT_MB = 10.0, 2048
PAGE_LIMIT_MS, NEXT_LIMIT_MS, RATING_LIMIT_MS = 500.0, 100.0, 50.0


# --- build -----------------------------------------------------------------------------------


def _table_extras(cursor, table: str) -> tuple[list[str], list[str]]:
    """SQL that drops and SQL that recreates `table`'s foreign keys, unique constraints and
    secondary indexes (all but the primary key): rebuilt once after a bulk load."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'u')",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u'))",
        [table, table],
    )
    indexes = cursor.fetchall()
    drop = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for name, _ in constraints]
    drop += [f'DROP INDEX "{name}"' for name, _ in indexes]
    # Unique constraints first: foreign keys elsewhere may rely on them.
    ordered = sorted(constraints, key=lambda c: not c[1].startswith("UNIQUE"))
    create = [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, d in ordered]
    create += [definition for _, definition in indexes]
    return drop, create


def _parallel(statements: list[str], connections: int = 2) -> None:
    """Run independent SQL statements on `connections` connections at once (one per core)."""
    import psycopg

    pending = list(reversed(statements))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        with psycopg.connect(bench.bench_url(), autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '1GB'")
            while True:
                with lock:
                    if not pending or errors:
                        return
                    sql = pending.pop()
                try:
                    conn.execute(sql)
                except BaseException as exc:  # reported after the other thread stops
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=work) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def build(problems: int, per_problem: int) -> dict:
    """The campaign, its problems, samples and checkpoint scores; returns timings."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from annotate.models import Campaign, Checkpoint, Problem, Sample, Score

    bench.create_tables()
    timings: dict[str, float] = {}
    campaign = Campaign.objects.create(slug=SLUG, name="PRM800K scale", k=8, qc_rate=0.0)
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="scale", path="/nonexistent")
    hashed = make_password("scale-password")
    users = get_user_model().objects
    users.create(username="lead", password=hashed, is_staff=True, is_superuser=True)
    labelers = users.bulk_create(
        get_user_model()(username=f"labeler{i:03d}", password=hashed) for i in range(LABELERS)
    )
    campaign.labelers.add(*labelers)

    sample_t, problem_t, score_t = (
        Sample._meta.db_table,
        Problem._meta.db_table,
        Score._meta.db_table,
    )
    with open(bench.PROCESSBENCH, encoding="utf-8") as handle:
        solutions = [json.loads(line)["steps"] for line in handle]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_steps (i int PRIMARY KEY, steps jsonb)")
        cursor.executemany(
            "INSERT INTO bench_steps VALUES (%s, %s)",
            [(i, json.dumps(steps)) for i, steps in enumerate(solutions)],
        )
        started = time.perf_counter()
        cursor.execute(
            f"INSERT INTO {problem_t} (campaign_id, unique_id, problem, ground_truth_answer, "
            "ground_truth_solution, subject, split, ground_truth_status, ground_truth_note) "
            f"SELECT %s, 'scale/' || g, 'Problem ' || g || ': find x.', (g %% 97)::text, '', "
            "'algebra', CASE WHEN g %% 50 = 0 THEN 'test' ELSE 'train' END, 'ok', '' "
            "FROM generate_series(0, %s - 1) g",
            [campaign.pk, problems],
        )
        cursor.execute(f"SELECT min(id) FROM {problem_t} WHERE campaign_id = %s", [campaign.pk])
        first_problem = cursor.fetchone()[0]
        drops, creates = [], []
        for table in (sample_t, score_t):
            drop, create = _table_extras(cursor, table)
            drops += drop
            creates += create
        for sql in drops:
            cursor.execute(sql)
    timings["problems_s"] = time.perf_counter() - started

    # One statement per 250 problems, two at a time; answers: the ground truth 30 % of the time.
    started = time.perf_counter()
    n_steps = len(solutions)
    chunk = 250
    sample_sql = (
        f"INSERT INTO {sample_t} (campaign_id, problem_id, external_id, steps, answer, "
        "is_correct, generator, steps_hash, verifier_score, created_at) "
        "SELECT {campaign}, {first} + p, 's' || p || '-' || j, b.steps, "
        "CASE WHEN h < 0.3 THEN (p % 97)::text ELSE (j % 13)::text END, h < 0.3, 'bench', "
        "md5(p || '-' || j), (hashint4(p * 7919 + j) & 1048575) / 1048575.0, now() "
        "FROM generate_series({p0}, {p1}) p, generate_series(0, {m} - 1) j, "
        "LATERAL (SELECT (hashint4(p * 104729 + j) & 1048575) / 1048576.0 AS h) r, "
        "bench_steps b WHERE b.i = (p * {m} + j) % {n}"
    )
    _parallel(
        [
            sample_sql.format(
                campaign=campaign.pk,
                first=first_problem,
                p0=p0,
                p1=min(p0 + chunk, problems) - 1,
                m=per_problem,
                n=n_steps,
            )
            for p0 in range(0, problems, chunk)
        ]
    )
    timings["samples_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT min(id), max(id) FROM {sample_t} WHERE campaign_id = %s", [campaign.pk]
        )
        low, high = cursor.fetchone()
    step = (high - low) // 24 + 1
    score_sql = (
        f"INSERT INTO {score_t} (sample_id, checkpoint_id, score, step_scores, truncated, "
        "created_at) SELECT id, {checkpoint}, (hashint8(id) & 1048575) / 1048575.0, "
        "'[0.9, 0.8, 0.7]'::jsonb, false, now() FROM {sample} WHERE id BETWEEN {a} AND {b}"
    )
    _parallel(
        [
            score_sql.format(checkpoint=checkpoint.pk, sample=sample_t, a=a, b=a + step - 1)
            for a in range(low, high + 1, step)
        ]
    )
    timings["scores_s"] = time.perf_counter() - started

    started = time.perf_counter()
    _parallel(creates)
    timings["indexes_s"] = time.perf_counter() - started
    started = time.perf_counter()
    _parallel(
        [f"VACUUM (ANALYZE) {t}" for t in (sample_t, score_t, problem_t)]
        + ["DROP TABLE bench_steps"]
    )
    timings["vacuum_s"] = time.perf_counter() - started
    samples = problems * per_problem
    timings["samples_per_s"] = samples / (timings["samples_s"] + timings["indexes_s"])
    return {"samples": samples, "checkpoint": checkpoint.pk, **timings}


# --- measurements (each in a child process) ---------------------------------------------------


def child_split(scores: str) -> dict:
    """Where `select --dry-run`'s time goes: pool load vs selection (the same calls
    `preview_selection` makes)."""
    from annotate.generations import load_pool, pick_from_pool, resolve_scores, selection_params
    from annotate.models import Campaign

    campaign = Campaign.objects.get(slug=SLUG)
    checkpoint = resolve_scores(campaign, scores)
    started = time.perf_counter()
    pool = load_pool(campaign, checkpoint)
    loaded = time.perf_counter()
    params = selection_params(campaign)
    picked, _ = pick_from_pool(campaign, pool, params, campaign.next_generation_number())
    done = time.perf_counter()
    return {
        "pool": len(pool),
        "picked": len(picked),
        "load_s": loaded - started,
        "select_s": done - loaded,
        "rss_mb": bench.peak_rss_mb(),
    }


def child_open(checkpoint: int) -> dict:
    """The generation pipeline's last step at this size: select on the checkpoint's scores
    and write the open generation."""
    from annotate.generations import open_generation
    from annotate.models import Campaign

    campaign = Campaign.objects.get(slug=SLUG)
    started = time.perf_counter()
    generation, preview = open_generation(campaign, scores=checkpoint)
    return {
        "generation": generation.number,
        "selected": len(preview),
        "open_s": time.perf_counter() - started,
        "rss_mb": bench.peak_rss_mb(),
    }


def _timed(client, method: str, url: str, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    response = getattr(client, method)(url, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        raise SystemExit(f"{method.upper()} {url}: HTTP {response.status_code}")
    return elapsed, response


def child_pages() -> dict:
    """A labeler's next task, task page and rating; the lead's pages; all through Django's
    test client on the production middleware stack (in-process: no network, one core)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from annotate.models import Campaign

    campaign = Campaign.objects.get(slug=SLUG)
    host = {"HTTP_HOST": "127.0.0.1"}
    times: dict[str, list[float]] = {"next": [], "task_page": [], "rating": []}
    for user in get_user_model().objects.filter(username__startswith="labeler"):
        client = Client(**host)
        client.force_login(user)
        elapsed, response = _timed(client, "post", "/next/")
        times["next"].append(elapsed)
        if response.status_code != 302 or "/tasks/" not in response["Location"]:
            raise SystemExit(f"/next/ gave no task to {user}: {response.status_code}")
        task = response["Location"]
        elapsed, _ = _timed(client, "get", task)
        times["task_page"].append(elapsed)
        elapsed, _ = _timed(
            client, "post", task + "rate/", data={"step": 0, "rating": 1}, HTTP_HX_REQUEST="true"
        )
        times["rating"].append(elapsed)
    lead = Client(**host)
    lead.force_login(get_user_model().objects.get(username="lead"))
    pages = {
        "dashboard": "/dashboard/",
        "campaign dashboard": f"/dashboard/{SLUG}/",
        "admin samples": "/admin/annotate/sample/",
        "admin samples of campaign": f"/admin/annotate/sample/?campaign__id__exact={campaign.pk}",
        "admin problems": "/admin/annotate/problem/",
        "admin selections": "/admin/annotate/selection/",
        "admin labels": "/admin/annotate/label/",
        "admin assignments": "/admin/annotate/assignment/",
        "admin generations": "/admin/annotate/generation/",
    }
    for name, url in pages.items():
        _timed(lead, "get", url)  # warm: templates compiled, caches filled
        times[name] = [_timed(lead, "get", url)[0] for _ in range(3)]
    return times


# --- the report -------------------------------------------------------------------------------


# Runs manage.py and reports its own peak RSS (VmHWM) on stderr's last line at exit.
_MEASURED = (
    "import atexit, runpy, sys\n"
    "from pathlib import Path\n"
    "def hwm():\n"
    "    for line in Path('/proc/self/status').read_text().splitlines():\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('\\nVmHWM ' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def run_command(*args: str) -> dict:
    """A management command as the lead runs it: wall time and the process's own peak RSS."""
    env = {**os.environ, "DATABASE_URL": bench.bench_url(), "DJANGO_DEBUG": "true"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(bench.ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stderr}")
    kib = int(proc.stderr.strip().splitlines()[-1].split()[1])
    return {"wall_s": wall, "rss_mb": kib / 1024, "output": json.loads(proc.stdout)}


def database_size(samples: int) -> dict:
    import psycopg

    with psycopg.connect(bench.bench_url()) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        tables = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relname IN ('annotate_sample', 'annotate_score', 'annotate_problem')"
        ).fetchall()
    return {
        "database_bytes": total,
        "bytes_per_sample": total / samples,
        **{f"{name}_bytes_per_sample": size / samples for name, size in tables},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=12_000)
    parser.add_argument("--per-problem", type=int, default=1_000)
    parser.add_argument("--reuse", action="store_true", help="keep a database built before")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        bench.setup_django()
        kind, *rest = args.child
        result = {
            "build": lambda: build(int(rest[0]), int(rest[1])),
            "split": lambda: child_split(rest[0]),
            "open": lambda: child_open(int(rest[0])),
            "pages": child_pages,
        }[kind]()
        print(json.dumps(result))
        return 0

    # Settings need it outside production (secret key); the pages still run as deployed.
    os.environ["DJANGO_DEBUG"] = "true"
    script = Path(__file__).resolve()
    samples = args.problems * args.per_problem
    report: dict = {"problems": args.problems, "per_problem": args.per_problem}
    if not (args.reuse and _has_campaign()):
        bench.create_database()
        print(f"building {samples:,} samples ({args.problems:,} × {args.per_problem:,}) …")
        report["build"] = bench.run_child(
            script, "build", str(args.problems), str(args.per_problem)
        )
    else:
        report["build"] = {"reused": True, "checkpoint": _checkpoint_id()}
    checkpoint = str(report["build"]["checkpoint"])
    b = report["build"]
    if "samples_s" in b:
        total = sum(b[k] for k in ("problems_s", "samples_s", "scores_s", "indexes_s", "vacuum_s"))
        print(
            f"built in {total:.0f} s:"
            f" samples {b['samples_s']:.0f} s, scores {b['scores_s']:.0f} s, "
            f"indexes {b['indexes_s']:.0f} s, vacuum {b['vacuum_s']:.0f} s "
            f"({b['samples_per_s']:,.0f} samples/s with their indexes)"
        )

    rows = []
    for scores in ("imported", checkpoint):
        run = run_command("select", "--campaign", SLUG, "--dry-run", "--json", "--scores", scores)
        split = bench.run_child(script, "split", scores)
        report[f"select_{'imported' if scores == 'imported' else 'checkpoint'}"] = {
            "wall_s": run["wall_s"],
            "rss_mb": run["rss_mb"],
            "pool": run["output"].get("pool_size"),
            **split,
        }
        label = "imported scores" if scores == "imported" else "checkpoint scores"
        rows.append(
            (
                f"select --dry-run, {label}",
                f"{run['wall_s']:.1f} s, {run['rss_mb']:,.0f} MB "
                f"(load {split['load_s']:.1f} s + select {split['select_s']:.1f} s)",
                f"< {SELECT_LIMIT_S:.0f} s, < {SELECT_LIMIT_MB:,} MB",
                run["wall_s"] < SELECT_LIMIT_S and run["rss_mb"] < SELECT_LIMIT_MB,
            )
        )
    opened = bench.run_child(script, "open", checkpoint)
    report["open_generation"] = opened
    rows.append(
        (
            f"open_generation (checkpoint scores, {opened['selected']:,} selected)",
            f"{opened['open_s']:.1f} s, {opened['rss_mb']:,.0f} MB",
            f"< {SELECT_LIMIT_S:.0f} s, < {SELECT_LIMIT_MB:,} MB",
            opened["open_s"] < SELECT_LIMIT_S and opened["rss_mb"] < SELECT_LIMIT_MB,
        )
    )
    pages = bench.run_child(script, "pages")
    report["pages_ms"] = pages
    for name, limit in (("next", NEXT_LIMIT_MS), ("task_page", NEXT_LIMIT_MS)):
        rows.append(_latency_row(name, pages[name], limit))
    rows.append(_latency_row("rating", pages["rating"], RATING_LIMIT_MS))
    for name, values in pages.items():
        if name not in ("next", "task_page", "rating"):
            worst = max(values)
            rows.append(
                (
                    name,
                    f"{statistics.median(values):.0f} ms (max {worst:.0f})",
                    f"≤ {PAGE_LIMIT_MS:.0f} ms",
                    worst <= PAGE_LIMIT_MS,
                )
            )
    size = database_size(samples)
    report["size"] = size
    rows.append(
        (
            "database size",
            f"{size['database_bytes'] / 2**30:.1f} GiB, {size['bytes_per_sample']:,.0f} B a sample "
            f"(samples {size.get('annotate_sample_bytes_per_sample', 0):,.0f}, "
            f"scores {size.get('annotate_score_bytes_per_sample', 0):,.0f})",
            "—",
            None,
        )
    )
    print(f"\n{samples:,} samples ({args.problems:,} problems × {args.per_problem:,})")
    print(f"{'measure':<48} {'measured':<52} {'limit':<20} met")
    for name, measured, limit, met in rows:
        verdict = "—" if met is None else ("yes" if met else "NO")
        print(f"{name:<48} {measured:<52} {limit:<20} {verdict}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if not args.keep:
        bench.drop_database()
    return 0


def _latency_row(name: str, values: list[float], limit: float) -> tuple:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return (
        f"{name} (p50 / p95 over {len(values)})",
        f"{p50:.0f} / {p95:.0f} ms",
        f"p95 ≤ {limit:.0f} ms",
        p95 <= limit,
    )


def _query_one(sql: str):
    import psycopg

    try:
        with psycopg.connect(bench.bench_url()) as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def _has_campaign() -> bool:
    return bool(_query_one(f"SELECT count(*) FROM annotate_campaign WHERE slug = '{SLUG}'"))


def _checkpoint_id() -> int:
    return _query_one("SELECT min(id) FROM annotate_checkpoint")


if __name__ == "__main__":
    sys.exit(main())
