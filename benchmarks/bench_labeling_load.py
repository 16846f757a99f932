"""Labeling load: simulated labelers against gunicorn on PostgreSQL; nothing may be lost.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
       .venv/bin/python benchmarks/bench_labeling_load.py [--users 50] [--duration 60]
       [--workers 3] [--threads 4] [--mode production|debug] [--think 1.0] [--json OUT] [--keep]

What it does, all on loopback:
1. creates a throwaway database `stepwise_load` on the server named by DATABASE_URL, migrates it
   (or, when the migrations lag behind the models, builds the tables from the models and says
   so), and seeds one campaign: real ProcessBench solutions as samples, one open generation
   with an unclaimed slot per sample, a few QC gold samples at a 10% QC rate, and the users;
2. starts `gunicorn config.wsgi` on a free 127.0.0.1 port: --workers processes, each with
   --threads threads (gthread; 1 thread: sync workers), database connections kept open
   (DATABASE_CONN_MAX_AGE). In --mode production (the default) the server runs as deployed:
   DJANGO_DEBUG=false, a generated secret key, ALLOWED_HOSTS=127.0.0.1, static files collected
   (manifest storage) into a temporary DJANGO_STATIC_ROOT, secure cookies and CSRF origin
   checks; the clients stand in for browsers behind a TLS-terminating proxy (they send
   `X-Forwarded-Proto: https` and an `Origin`, and keep the secure cookies on this loopback
   hop), so only the HTTPS redirect is off (DJANGO_SECURE_SSL_REDIRECT=false). --mode debug
   is the development server settings (DEBUG on);
3. logs every simulated labeler in (a thread with its own `requests` session each; a few at a
   time and before the clock starts, since each login hashes a password), then for --duration
   seconds each one: POST /next/ (claims a task; 302 to it), GET the task page, and POSTs
   ratings step by step as the page's htmx does (mostly +1/0, sometimes −1, which ends the
   task) until the task is done, then asks for the next. --think is the mean pause
   before each rating (uniform 0.5–1.5×); 0 means back-to-back requests (saturation).
   The labelers arrive at uniform random times over the first --ramp seconds (2 s, two
   think times): fifty claims in the same millisecond measure a burst no shift produces;
   --ramp 0 measures that burst.
4. stops the server and compares the StepRatings in the database with the ratings the
   clients saw acknowledged (HTTP 200): the same (task, step, rating) set, or it fails;
5. drops the database (unless --keep).

Reported: p50/p95/p99/max latency of a rating POST, of POST /next/, of the task page and of
login; requests and ratings per second; errors (any non-2xx/3xx other than the expected
redirects, or a transport error); lost and phantom ratings. Targets: rating p95 ≤ 50 ms,
next p95 and task page p95 ≤ 100 ms, zero errors, zero lost, and some ratings at all.

What each request cost the server comes back in its `Server-Timing` header (the server runs
with STEPWISE_SERVER_TIMING on, config/server_timing.py): SQL queries, time in the database,
the request thread's CPU and the time inside Django. Reported per kind of request, for all
requests and for the slowest 5 % (the tail): when the tail has the same queries and CPU as
the median but a longer wait, requests queue for a worker (CPU saturation), not for work.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.cookies import RequestsCookieJar

ROOT = Path(__file__).resolve().parent.parent
LOAD_DB = "stepwise_load"
PASSWORD = "load-test-password"
PROCESSBENCH = ROOT / "data" / "processbench_math.jsonl"
STEP_ROW = re.compile(r'<li class="step[^"]*" id="step-(\d+)"')
VERSION = re.compile(r'id="task-bar" data-version="(\d*)"')
TARGETS_MS = {"rate": 50.0, "next": 100.0, "task": 100.0}
SERVER_TIMING = re.compile(r'(\w+);dur=([\d.]+)(?:;desc="(\d+) queries")?')


# --- Database and server ------------------------------------------------------------------


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must name a PostgreSQL server (postgres://user@host:port/db)")
    return url


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(server_url())._replace(path="/" + name))


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def setup_django() -> None:
    os.environ["DATABASE_URL"] = database_url(LOAD_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("STEPWISE_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def migrations_lag() -> bool:
    """Whether the models have changes no migration records (what `makemigrations --check`
    reports), read-only."""
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    loader = MigrationLoader(None, ignore_no_migrations=True)
    changes = MigrationAutodetector(loader.project_state(), ProjectState.from_apps(apps)).changes(
        graph=loader.graph
    )
    return bool(changes)


def build_schema(mode: str) -> str:
    from django.core.management import call_command

    if mode == "auto":
        mode = "models" if migrations_lag() else "migrate"
    if mode == "migrate":
        call_command("migrate", interactive=False, verbosity=0)
        return "migrate"
    from django.apps import apps
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in apps.get_models():
            if model._meta.managed and not model._meta.proxy:
                editor.create_model(model)
    return "models (migrations lag behind the models)"


def seed(users: int, slots: int, qc_gold: int, seed_value: int = 0) -> dict:
    """One campaign, one open generation, `slots` unclaimed tasks, QC gold, labelers."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from annotate.models import Assignment, Campaign, Generation, GoldStandard, Problem, Sample

    rng = random.Random(seed_value)
    records = [json.loads(line) for line in PROCESSBENCH.open(encoding="utf-8")]
    campaign = Campaign.objects.create(slug="load", name="Load test", qc_rate=0.1, k=4)
    problems: dict[str, Problem] = {}
    for record in records:
        if record["problem"] not in problems:
            problems[record["problem"]] = Problem(
                campaign=campaign,
                unique_id=f"load/{len(problems)}",
                problem=record["problem"],
                ground_truth_answer="42",
            )
    Problem.objects.bulk_create(problems.values())
    samples = []
    for i in range(slots + qc_gold):
        record = records[i % len(records)]
        samples.append(
            Sample(
                campaign=campaign,
                problem=problems[record["problem"]],
                external_id=f"load-{i}",
                steps=record["steps"],
                answer="42",
                is_correct=False,
                steps_hash=hashlib.md5(f"{i}".encode()).hexdigest(),
            )
        )
    Sample.objects.bulk_create(samples, batch_size=2000)
    generation = Generation.objects.create(
        campaign=campaign, number=0, status=Generation.Status.OPEN, opened_at=timezone.now()
    )
    Assignment.objects.bulk_create(
        (Assignment(generation=generation, sample=s) for s in samples[:slots]), batch_size=5000
    )
    GoldStandard.objects.bulk_create(
        GoldStandard(
            sample=s,
            purpose=GoldStandard.Purpose.QUALITY_CONTROL,
            ratings=[1] * (len(s.steps) - 1) + [rng.choice([1, -1])],
            finish_reason="solution",
        )
        for s in samples[slots:]
    )
    GoldStandard.objects.filter(ratings__contains=[-1]).update(finish_reason="found_error")
    hashed = make_password(PASSWORD)  # hashed once: PBKDF2 per user would take minutes
    user_model = get_user_model()
    people = user_model.objects.bulk_create(
        user_model(username=f"labeler{i:03d}", password=hashed) for i in range(users)
    )
    campaign.labelers.add(*people)
    return {"campaign": campaign.pk, "slots": slots, "qc_gold": qc_gold, "users": users}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(mode: str, static_root: Path) -> dict[str, str]:
    """The web server's environment: production settings (see the module doc) or debug."""
    import secrets

    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(LOAD_DB),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "STEPWISE_LOG_LEVEL": "WARNING",
            # Persistent connections: one per worker thread for the whole run.
            "DATABASE_CONN_MAX_AGE": "600",
            "STEPWISE_SERVER_TIMING": "true",
        }
    )
    env.pop("CELERY_BROKER_URL", None)
    if mode == "production":
        env.update(
            {
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DJANGO_SECURE_SSL_REDIRECT": "false",
                "DJANGO_STATIC_ROOT": str(static_root),
            }
        )
    else:
        env["DJANGO_DEBUG"] = "true"
    return env


def collect_static(env: dict[str, str]) -> None:
    """Production serves hashed static files from a manifest: build it (temp dir)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def start_server(
    port: int,
    workers: int,
    threads: int,
    env: dict[str, str],
    log: Path,
    *,
    app: str = "config.wsgi",
    gunicorn: Path | None = None,
    cwd: Path = ROOT,
    ready_path: str = "/accounts/login/",
    ready_s: float = 60,
) -> subprocess.Popen:
    """gunicorn serving `app` (by default Stepwise with this interpreter's gunicorn), once
    `ready_path` answers 200; another Django project (a peer) passes its own."""
    gunicorn = gunicorn or Path(sys.executable).with_name("gunicorn")
    command = [
        str(gunicorn),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--threads",
        str(threads),
        "--backlog",
        "512",
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]
    handle = log.open("w")
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited early; see {log}")
        try:
            response = requests.get(f"{base}{ready_path}", headers=proxy_headers(base), timeout=2)
            if response.status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise SystemExit(f"gunicorn did not answer within {ready_s:.0f} s")


def _proc_stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat fields after the command name: state ppid pgrp ... utime stime ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU of every live process in the server's process group (Linux /proc)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        fields = _proc_stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid:
            total += _cpu(fields)
    return total


def database_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the load database (same host)."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (LOAD_DB,)
            )
        ]
    return {pid: _cpu(fields) for pid in pids if (fields := _proc_stat(pid)) is not None}


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- Simulated labelers -------------------------------------------------------------------


def proxy_headers(base: str) -> dict[str, str]:
    """What a TLS-terminating proxy and a browser add: the original scheme and the Origin
    (checked by CSRF on HTTPS requests)."""
    origin = base.replace("http://", "https://", 1)
    return {"X-Forwarded-Proto": "https", "Origin": origin}


class LoopbackCookieJar(RequestsCookieJar):
    """Sends `Secure` cookies over the plain-HTTP loopback hop, as the proxy would over TLS."""

    def extract_cookies(self, response, request) -> None:
        super().extract_cookies(response, request)
        for cookie in self:
            cookie.secure = False


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # (monotonic start, ms) of every request: for the figures without the opening rush.
    timed: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acked: set[tuple[int, int, int]] = field(default_factory=set)
    # (client ms, server timing) of every request: what the server spent on the slow ones.
    costs: dict[str, list[tuple[float, dict[str, float]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    tasks: int = 0
    requests: int = 0


class Labeler:
    """One simulated labeler with its own session (cookies, CSRF token)."""

    def __init__(self, base: str, username: str, think: float, rng: random.Random):
        self.base, self.username, self.think, self.rng = base, username, think, rng
        self.session = requests.Session()
        self.session.cookies = LoopbackCookieJar()
        self.session.headers.update(proxy_headers(base))
        self.tally = Tally()

    def _timed(
        self, op: str, method: str, path: str, timeout: float = 30, **kwargs
    ) -> requests.Response | None:
        start = time.perf_counter()
        try:
            response = self.session.request(
                method, self.base + path, allow_redirects=False, timeout=timeout, **kwargs
            )
        except requests.RequestException as error:
            self.tally.errors.append(f"{op}: {type(error).__name__}: {error}"[:200])
            return None
        elapsed_ms = (time.perf_counter() - start) * 1000
        self.tally.latencies[op].append(elapsed_ms)
        self.tally.timed[op].append((time.monotonic() - elapsed_ms / 1000, elapsed_ms))
        self.tally.costs[op].append((elapsed_ms, parse_server_timing(response)))
        self.tally.requests += 1
        return response

    def login(self, gate: threading.Semaphore) -> bool:
        # Password hashing (PBKDF2, ~1 s of CPU each here) is the cost of a login: a few at a
        # time, before the clock starts, so logins never queue behind each other for minutes.
        with gate:
            return self._login()

    def _login(self) -> bool:
        page = self._timed("login_page", "GET", "/accounts/login/")
        if page is None or page.status_code != 200:
            self.tally.errors.append(f"login page: {getattr(page, 'status_code', None)}")
            return False
        token = self.session.cookies.get("csrftoken", "")
        response = self._timed(
            "login",
            "POST",
            "/accounts/login/",
            data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            timeout=120,
        )
        if response is None or response.status_code != 302:
            self.tally.errors.append(f"login: {getattr(response, 'status_code', None)}")
            return False
        return True

    def work(self, deadline: float, arrive_after: float = 0.0) -> None:
        """Label until `deadline`, starting `arrive_after` seconds from now."""
        time.sleep(arrive_after)
        while time.monotonic() < deadline:
            claimed = self._claim()
            if claimed is None:
                return
            if not self._label(*claimed, deadline):
                return
            self.tally.tasks += 1

    def _claim(self) -> tuple[int, int, str] | None:
        """POST /next/ (a GET only resumes a held task, it never claims), then the task page:
        (task id, steps, saved version shown), or None when the queue is empty or it failed."""
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", "")}
        response = self._timed("next", "POST", "/next/", headers=headers)
        if response is None or response.status_code == 200:
            return None  # transport error (counted) or queue empty
        location = response.headers.get("Location", "")
        match = re.search(r"/tasks/(\d+)/", location)
        if response.status_code != 302 or match is None:
            self.tally.errors.append(f"next: {response.status_code} {location}")
            return None
        task_id = int(match.group(1))
        page = self._timed("task", "GET", f"/tasks/{task_id}/")
        if page is None or page.status_code != 200:
            self.tally.errors.append(f"task page: {getattr(page, 'status_code', None)}")
            return None
        steps = len(STEP_ROW.findall(page.text))
        if steps == 0:
            self.tally.errors.append("task page: no steps found")
            return None
        version = VERSION.search(page.text)
        return task_id, steps, version.group(1) if version else ""

    def _label(self, task_id: int, steps: int, seen: str, deadline: float) -> bool:
        """Rate step by step as label.js does, sending back the saved version shown (`seen`)
        so the server may answer with only the changed rows."""
        headers = {"HX-Request": "true", "X-CSRFToken": self.session.cookies.get("csrftoken", "")}
        for step in range(steps):
            if self.think:
                time.sleep(self.think * self.rng.uniform(0.5, 1.5))
            if time.monotonic() >= deadline:
                return False
            rating = -1 if self.rng.random() < 0.12 else self.rng.choice((1, 1, 1, 0))
            response = self._timed(
                "rate",
                "POST",
                f"/tasks/{task_id}/rate/",
                data={"step": step, "rating": rating, "elapsed_ms": 800, "seen": seen},
                headers=headers,
            )
            if response is None:
                return False
            if response.status_code != 200:
                self.tally.errors.append(f"rate: {response.status_code}")
                return False
            # The answer must show this rating as chosen in this step's row (saved, then shown).
            if f'data-rating="{rating}" aria-pressed="true"' not in step_row(response.text, step):
                self.tally.errors.append("rate: the answer does not show the rating as saved")
                return False
            self.tally.acked.add((task_id, step, rating))
            version = VERSION.search(response.text)
            seen = version.group(1) if version else ""
            if rating == -1:
                break
        return True


def step_row(html: str, step: int) -> str:
    """Step `step`'s row of a task page or rating answer: up to the next step row (a step's
    Markdown may hold lists of its own, so the row's end is not the first `</li>`)."""
    start = html.find(f'id="step-{step}"')
    if start < 0:
        return ""
    end = html.find('<li class="step', start)
    return html[start : end if end >= 0 else len(html)]


def parse_server_timing(response: requests.Response) -> dict[str, float]:
    """{"db": ms, "queries": n, "cpu": ms, "total": ms} from the Server-Timing header."""
    cost: dict[str, float] = {}
    for name, duration, queries in SERVER_TIMING.findall(response.headers.get("Server-Timing", "")):
        cost[name] = float(duration)
        if queries:
            cost["queries"] = float(queries)
    return cost


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def server_costs(pairs: list[tuple[float, dict[str, float]]]) -> dict:
    """Mean server cost of all requests of a kind and of its slowest 5 %, and the wait: client
    latency not spent inside Django (queueing for a worker thread, the network, the GIL)."""

    def means(subset: list[tuple[float, dict[str, float]]]) -> dict:
        figures = {
            key: mean([cost[key] for _, cost in subset if key in cost])
            for key in ("queries", "db", "cpu", "total")
        }
        figures["wait"] = mean([ms - cost["total"] for ms, cost in subset if "total" in cost])
        return figures

    ordered = sorted(pairs, key=lambda pair: pair[0])
    return {
        "all": means(ordered),
        "slowest_5pct": means(ordered[int(len(ordered) * 0.95) :]),
        "max_queries": max((cost.get("queries", 0) for _, cost in ordered), default=None),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else None,
    }


def stored_ratings(campaign_id: int) -> set[tuple[int, int, int]]:
    from annotate.models import StepRating

    rows = StepRating.objects.filter(label__sample__campaign_id=campaign_id).values_list(
        "label__assignment_id", "step", "rating"
    )
    return {(a, s, r) for a, s, r in rows}


def run(args: argparse.Namespace) -> dict:
    import tempfile

    admin_sql(f"DROP DATABASE IF EXISTS {LOAD_DB} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {LOAD_DB}")
    process = None
    static_dir = tempfile.TemporaryDirectory(prefix="stepwise_static_")
    static_root = Path(static_dir.name)
    try:
        setup_django()
        schema = build_schema(args.schema)
        seeded = seed(args.users, args.slots, args.qc_gold)
        from django.db import connection

        connection.close()  # the server's workers get the database to themselves
        port = free_port()
        log = Path(args.server_log)
        env = server_env(args.mode, static_root)
        if args.mode == "production":
            collect_static(env)
        process = start_server(port, args.workers, args.threads, env, log)
        base = f"http://127.0.0.1:{port}"
        labelers = [
            Labeler(base, f"labeler{i:03d}", args.think, random.Random(i))
            for i in range(args.users)
        ]
        gate = threading.Semaphore(args.login_concurrency)
        login_started = time.monotonic()
        logins = [threading.Thread(target=lab.login, args=(gate,)) for lab in labelers]
        for thread in logins:
            thread.start()
        for thread in logins:
            thread.join()
        login_seconds = time.monotonic() - login_started
        load_before = os.getloadavg()[0]
        server_cpu = group_cpu_seconds(process.pid)
        db_cpu = database_cpu()
        client_cpu = time.process_time()
        started = time.monotonic()
        deadline = started + args.duration
        # Labelers arrive spread over --ramp seconds, as a shift does (0: one burst).
        arrivals = random.Random(-1)
        workers = [
            threading.Thread(target=lab.work, args=(deadline, arrivals.uniform(0, args.ramp)))
            for lab in labelers
        ]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        elapsed = time.monotonic() - started
        server_cpu = group_cpu_seconds(process.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        db_cpu = sum(v - db_cpu.get(pid, 0.0) for pid, v in database_cpu().items())
        load_after = os.getloadavg()[0]
        stop_server(process)
        process = None

        latencies: dict[str, list[float]] = defaultdict(list)
        settled: dict[str, list[float]] = defaultdict(list)
        settle_at = started + min(args.warmup, elapsed / 2)
        errors: list[str] = []
        acked: set[tuple[int, int, int]] = set()
        costs: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
        tasks = requests_done = 0
        for lab in labelers:
            for op, pairs in lab.tally.costs.items():
                costs[op].extend(pairs)
            for op, values in lab.tally.latencies.items():
                latencies[op].extend(values)
            for op, pairs in lab.tally.timed.items():
                settled[op].extend(ms for at, ms in pairs if at >= settle_at)
            errors.extend(lab.tally.errors)
            acked |= lab.tally.acked
            tasks += lab.tally.tasks
            requests_done += lab.tally.requests
        stored = stored_ratings(seeded["campaign"])
        result = {
            "schema": schema,
            "seeded": seeded,
            "users": args.users,
            "mode": args.mode,
            "workers": args.workers,
            "threads": args.threads,
            "think_s": args.think,
            "ramp_s": args.ramp,
            "login_phase_s": round(login_seconds, 1),
            "duration_s": round(elapsed, 2),
            "requests": requests_done,
            "requests_per_s": round(requests_done / elapsed, 1),
            "ratings_acked": len(acked),
            "ratings_per_s": round(len(acked) / elapsed, 1),
            "tasks_completed": tasks,
            "latency": {op: summarize(values) for op, values in sorted(latencies.items())},
            # Every labeler starts at the same instant: the first claims queue behind each
            # other. The same figures for requests sent after --warmup seconds (targets are
            # judged on "latency", all requests, above).
            "latency_after_warmup": {
                "warmup_s": round(settle_at - started, 1),
                **{op: summarize(values) for op, values in sorted(settled.items())},
            },
            # Per request, from Server-Timing: queries, ms in the database, ms of CPU, ms in
            # Django, and the wait (client ms minus Django ms), for all and for the tail.
            "server_cost": {op: server_costs(pairs) for op, pairs in sorted(costs.items())},
            "errors": len(errors),
            "error_kinds": sorted(set(errors))[:20],
            "ratings_stored": len(stored),
            "lost": len(acked - stored),
            "phantom": len(stored - acked),
            "cpu_s": {
                "server": round(server_cpu, 1),
                "database": round(db_cpu, 1),
                "client": round(client_cpu, 1),
            },
            "cpu_ms_per_request": {
                "server": round(1000 * server_cpu / max(requests_done, 1), 1),
                "database": round(1000 * db_cpu / max(requests_done, 1), 1),
            },
            "load_average_1m": {"before": load_before, "after": load_after},
        }
        result["targets_met"] = {
            f"{op}_p95": (p95 := result["latency"].get(op, {}).get("p95_ms")) is not None
            and p95 <= limit
            for op, limit in TARGETS_MS.items()
        }
        result["targets_met"] |= {
            # A run that rated nothing proves nothing (a client that never reaches a task).
            "some_ratings": bool(acked),
            "zero_errors": not errors,
            "zero_lost": result["lost"] == 0,
        }
        return result
    finally:
        if process is not None:
            stop_server(process)
        static_dir.cleanup()
        if not args.keep:
            with contextlib.suppress(Exception):  # Django may not be set up yet
                from django.db import connections

                connections.close_all()
            admin_sql(f"DROP DATABASE IF EXISTS {LOAD_DB} WITH (FORCE)")


def print_table(result: dict) -> None:
    """Each latency beside its limit, and what the server spent on the median and the tail."""
    load = result["load_average_1m"]
    print(f"\n{result['users']} labelers, {result['duration_s']} s, load average {load}")
    print(
        f"{'request':<8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'limit':>6} {'met':>4}"
        f" {'queries':>8} {'cpu ms':>7} {'db ms':>6} | tail: {'queries':>7} {'cpu':>6}"
        f" {'db':>6} {'wait ms':>8}"
    )
    for op in ("next", "task", "rate"):
        latency = result["latency"].get(op)
        cost = result["server_cost"].get(op)
        if not latency or not cost:
            continue
        limit = TARGETS_MS[op]
        every, tail = cost["all"], cost["slowest_5pct"]
        print(
            f"{op:<8} {latency['count']:>6} {latency['p50_ms']:>8.1f} {latency['p95_ms']:>8.1f}"
            f" {limit:>6.0f} {'yes' if latency['p95_ms'] <= limit else 'NO':>4}"
            f" {every['queries'] or 0:>8.1f} {every['cpu'] or 0:>7.1f} {every['db'] or 0:>6.1f}"
            f" | tail: {tail['queries'] or 0:>7.1f} {tail['cpu'] or 0:>6.1f}"
            f" {tail['db'] or 0:>6.1f} {tail['wait'] or 0:>8.1f}"
        )
    print(
        f"errors {result['errors']}, lost {result['lost']}, phantom {result['phantom']},"
        f" ratings {result['ratings_acked']} ({result['ratings_per_s']}/s);"
        f" CPU ms/request server {result['cpu_ms_per_request']['server']},"
        f" database {result['cpu_ms_per_request']['database']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker (gthread); 1: sync workers"
    )
    parser.add_argument(
        "--mode",
        choices=["production", "debug"],
        default="production",
        help="server settings: as deployed (DEBUG off) or development (DEBUG on)",
    )
    parser.add_argument(
        "--think", type=float, default=1.0, help="mean seconds before each rating; 0: none"
    )
    parser.add_argument("--slots", type=int, default=6000, help="regular tasks seeded")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds left out of the `latency_after_warmup` figures (not of the targets)",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=2.0,
        help="labelers start at uniform random times in the first RAMP seconds; 0: all at once",
    )
    parser.add_argument("--login-concurrency", type=int, default=2)
    parser.add_argument("--qc-gold", type=int, default=100)
    parser.add_argument("--schema", choices=["auto", "migrate", "models"], default="auto")
    parser.add_argument("--server-log", default="/tmp/stepwise_load_gunicorn.log")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    result = run(args)
    result["meta"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    met = result["targets_met"]
    if not (met["zero_errors"] and met["zero_lost"] and met["some_ratings"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
