"""Label Studio beside Stepwise on the same data and machine: import, next-task, save, memory.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
       .venv/bin/python benchmarks/bench_peer_label_studio.py [--tasks 5000] [--users 50]
       [--duration 60] [--workers 3] [--threads 4] [--think 1.0] [--json OUT]

The peer is Label Studio (PEER_PINS below), installed by this script from PyPI into a
throwaway virtualenv, bench-results/.peer/ (made once, reused while its versions match the
pins; never a dependency of the project). Both run the same way, one after the other, each
with the machine to itself:

- the same data: bench_import.py's samples (real ProcessBench step texts, ~15 a sample, over
  100 problems), one Stepwise sample and one Label Studio task per sample, the task's steps as
  `Paragraphs` labeled per step with `ParagraphLabels` (+1 / 0 / −1);
- the same server: gunicorn (the same pinned version in both virtualenvs) with --workers
  processes of --threads threads, each on its own PostgreSQL database on DATABASE_URL's
  server (Label Studio through DJANGO_DB=default and POSTGRE_*; its settings as shipped,
  DEBUG off; Stepwise in bench_labeling_load.py's production mode);
- import: the problems and samples uploaded to Stepwise's API as JSONL (graded on import, as
  the API always does), the tasks posted to Label Studio's import API as JSON, one request
  each, timed to the answer (both import synchronously): samples/s;
- labeling: --users simulated labelers for --duration seconds, --think seconds per step
  (uniform 0.5–1.5×), each rating steps until the first −1 (the same random draws on both).
  Stepwise: bench_labeling_load.py's labelers (log in, POST /next/, the task page, one
  rating POST per step). Label Studio: legacy API tokens (enabled for the organization),
  GET /api/projects/ID/next/, the labels chosen in the browser, then one annotation POST.
  Figures: next-task p50/p95 (Stepwise's claim, and claim + task page, beside Label Studio's
  next, which carries the task), save p50/p95 (a rating; an annotation), step labels saved
  per second, errors (non-2xx, or no answer within --client-timeout);
- lost/phantom: every save the clients saw acknowledged must be in the database, and
  nothing else (Stepwise: (task, step, rating); Label Studio: (annotation, task, labels));
- memory: RSS and PSS summed over the server's process tree (gunicorn and its workers),
  sampled every half second; the peak while labeling (and while importing).

Printed: figure | Stepwise | Label Studio | ratio (> 1: Stepwise is faster / smaller).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_db as bench
import bench_import
import bench_labeling_load as load
import requests

ROOT = bench.ROOT
PEER_PINS = {"label-studio": "1.23.2", "gunicorn": "27.0.1"}
PEER_VENV = ROOT / "bench-results" / ".peer"
STEPWISE_DB = bench.BENCH_DB
PEER_DB = f"{bench.BENCH_DB}_ls"
RATINGS = {1: "+1", 0: "0", -1: "-1"}
LABEL_CONFIG = """<View>
  <Text name="problem" value="$problem"/>
  <Paragraphs name="steps" value="$steps" layout="dialogue" nameKey="author" textKey="text"/>
  <ParagraphLabels name="rating" toName="steps">
    <Label value="+1"/><Label value="0"/><Label value="-1"/>
  </ParagraphLabels>
</View>"""
# Run by the peer's interpreter: migrate, one organization with legacy tokens on, its users.
PEER_SETUP = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User

owner = User.objects.create_user(email="owner@bench.local", is_staff=True, is_superuser=True)
org = Organization.create_organization(
    created_by=owner, title="bench", legacy_api_tokens_enabled=True
)
org.jwt.legacy_api_tokens_enabled = True
org.jwt.save()
people = [owner]
for i in range(int(sys.argv[1])):
    user = User.objects.create_user(email=f"labeler{i:03d}@bench.local")
    org.add_user(user)
    people.append(user)
for user in people:
    user.active_organization = org
    user.save(update_fields=["active_organization"])
print(json.dumps([Token.objects.get_or_create(user=user)[0].key for user in people]))
"""


# --- The peer's virtualenv --------------------------------------------------------------


def peer_versions(python: Path) -> dict[str, str | None]:
    probe = (
        "import json, importlib.metadata as m\n"
        "def v(n):\n"
        "    try:\n        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n        return None\n"
        f"print(json.dumps({{n: v(n) for n in {list(PEER_PINS)!r}}}))"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def peer_python() -> Path:
    """The peer's interpreter, installing the pinned versions first when they are missing."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    if peer_versions(python) != PEER_PINS:
        print(f"installing {PEER_PINS} into {PEER_VENV} (minutes)...", flush=True)
        log = PEER_VENV / "install.log"
        with log.open("w") as handle:
            pins = [f"{name}=={version}" for name, version in PEER_PINS.items()]
            done = subprocess.run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", *pins],
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode or peer_versions(python) != PEER_PINS:
            sys.exit(f"installing the peer failed; see {log}")
    return python


def peer_app_dir(python: Path) -> Path:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import label_studio, os; print(os.path.dirname(label_studio.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def peer_env(data_dir: Path) -> dict[str, str]:
    """Label Studio's settings as shipped, on PostgreSQL, DEBUG off, nothing sent out."""
    parts = urlsplit(load.server_url())
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
        "DJANGO_DB": "default",
        "POSTGRE_NAME": PEER_DB,
        "POSTGRE_USER": parts.username or "postgres",
        "POSTGRE_PASSWORD": parts.password or "",
        "POSTGRE_HOST": parts.hostname or "127.0.0.1",
        "POSTGRE_PORT": str(parts.port or 5432),
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
    }


# --- Memory of a server's process tree ----------------------------------------------------


def tree_memory_mib(pgid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB summed over the live processes of a process group."""
    rss = pss = 0
    for entry in Path("/proc").iterdir():
        fields = load._proc_stat(entry.name) if entry.name.isdigit() else None
        if fields is None or int(fields[2]) != pgid:
            continue
        with contextlib.suppress(OSError):
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024


class MemorySampler(threading.Thread):
    """Peak RSS/PSS of a server's tree per phase (`phase` is set by the caller)."""

    def __init__(self, pgid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pgid, self.every, self.phase = pgid, every, "start"
        self.peaks: dict[str, dict[str, float]] = defaultdict(lambda: {"rss": 0.0, "pss": 0.0})
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            rss, pss = tree_memory_mib(self.pgid)
            peak = self.peaks[self.phase]
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)

    def stop(self) -> dict[str, dict[str, float]]:
        self.stopped.set()
        self.join()
        return {
            phase: {k: round(v, 1) for k, v in peak.items()} for phase, peak in self.peaks.items()
        }


# --- Labelers -------------------------------------------------------------------------------


def draw_ratings(rng: random.Random, steps: int) -> list[int]:
    """The ratings one labeler gives a task, as bench_labeling_load draws them: to the first −1."""
    ratings = []
    for _ in range(steps):
        ratings.append(-1 if rng.random() < 0.12 else rng.choice((1, 1, 1, 0)))
        if ratings[-1] == -1:
            break
    return ratings


class StepwiseLabeler(load.Labeler):
    """bench_labeling_load's labeler, also timing claim + task page ("shown")."""

    timeout = 120.0

    def _timed(
        self, op: str, method: str, path: str, timeout: float | None = None, **kwargs
    ) -> requests.Response | None:
        # One client limit for both servers, long enough to see the peer's slowest answers.
        return super()._timed(op, method, path, timeout or self.timeout, **kwargs)

    def _claim(self) -> tuple[int, int, str] | None:
        started = time.perf_counter()
        claimed = super()._claim()
        if claimed is not None:
            self.tally.latencies["shown"].append((time.perf_counter() - started) * 1000)
        return claimed


class PeerLabeler(StepwiseLabeler):
    """A Label Studio annotator on the API with a legacy token: next, label in the browser
    (think time per step), submit the annotation."""

    def __init__(self, base: str, token: str, project: int, think: float, rng: random.Random):
        super().__init__(base, "", think, rng)
        self.session.headers["Authorization"] = f"Token {token}"
        self.project = project

    def work(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            response = self._timed("next", "GET", f"/api/projects/{self.project}/next/")
            if response is None or response.status_code == 404:
                return  # transport error (counted) or no task left
            if response.status_code != 200:
                self.tally.errors.append(f"next: {response.status_code}")
                return
            task = response.json()
            result = self._label_steps(task["data"]["steps"], deadline)
            if result is None:
                return
            saved = self._timed(
                "save",
                "POST",
                f"/api/tasks/{task['id']}/annotations/",
                json={"result": result, "lead_time": len(result) * self.think},
            )
            if saved is None:
                return
            if saved.status_code != 201:
                self.tally.errors.append(f"save: {saved.status_code}")
                return
            self.tally.acked.add((saved.json()["id"], task["id"], len(result)))
            self.tally.tasks += 1

    def _label_steps(self, steps: list[dict], deadline: float) -> list[dict] | None:
        """The regions the editor would send: one ParagraphLabels region per step rated."""
        result = []
        for index, rating in enumerate(draw_ratings(self.rng, len(steps))):
            if self.think:
                time.sleep(self.think * self.rng.uniform(0.5, 1.5))
            if time.monotonic() >= deadline:
                return None
            text = steps[index]["text"]
            value = {"start": str(index), "end": str(index), "startOffset": 0}
            value.update(endOffset=len(text), text=text, paragraphlabels=[RATINGS[rating]])
            result.append(
                {
                    "id": f"step{index}",
                    "from_name": "rating",
                    "to_name": "steps",
                    "type": "paragraphlabels",
                    "value": value,
                }
            )
        return result


def run_labelers(labelers: list[load.Labeler], duration: float) -> dict:
    """All labelers at once for `duration` s: latencies, errors, acknowledged saves."""
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    threads = [threading.Thread(target=lab.work, args=(started + duration,)) for lab in labelers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    acked: set[tuple[int, int, int]] = set()
    for lab in labelers:
        for op, values in lab.tally.latencies.items():
            latencies[op].extend(values)
        errors.extend(lab.tally.errors)
        acked |= lab.tally.acked
    return {
        "duration_s": round(elapsed, 1),
        "latency": {op: load.summarize(values) for op, values in sorted(latencies.items())},
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:20],
        "tasks_completed": sum(lab.tally.tasks for lab in labelers),
        "acked": acked,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
    }


def label_then_stop(
    server: subprocess.Popen, sampler: MemorySampler, labelers: list[load.Labeler], duration: float
) -> dict:
    """The labeling phase, its peak memory, then the server stopped (all it acknowledged is
    committed by then)."""
    sampler.phase = "load"
    outcome = run_labelers(labelers, duration)
    outcome["memory_mib"] = sampler.stop()
    load.stop_server(server)
    return outcome


def check_stored(outcome: dict, stored: set, step_labels: int) -> None:
    """Lost (acknowledged, not stored) and phantom (stored, never acknowledged) saves."""
    acked = outcome.pop("acked")
    outcome.update(
        saves_acked=len(acked),
        saves_stored=len(stored),
        lost=len(acked - stored),
        phantom=len(stored - acked),
        step_labels_per_s=round(step_labels / outcome["duration_s"], 1),
    )


# --- Stepwise ---------------------------------------------------------------------------------


def seed_stepwise(users: int) -> tuple[str, str]:
    """A campaign without QC (the peer has none), its labelers, a staff API token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from annotate.models import Campaign

    campaign = Campaign.objects.create(slug="peer", name="Peer benchmark", qc_rate=0.0, k=4)
    user_model = get_user_model()
    staff = user_model.objects.create(username="lead", is_staff=True)
    hashed = make_password(load.PASSWORD)  # once: PBKDF2 per user would take minutes
    people = user_model.objects.bulk_create(
        user_model(username=f"labeler{i:03d}", password=hashed) for i in range(users)
    )
    campaign.labelers.add(*people)
    return campaign.slug, Token.objects.create(user=staff).key


def open_generation(slug: str) -> int:
    """One open generation with an unclaimed task per imported sample."""
    from django.utils import timezone

    from annotate.models import Assignment, Campaign, Generation

    campaign = Campaign.objects.get(slug=slug)
    generation = Generation.objects.create(
        campaign=campaign, number=0, status=Generation.Status.OPEN, opened_at=timezone.now()
    )
    assignments = (
        Assignment(generation=generation, sample_id=pk)
        for pk in campaign.samples.values_list("pk", flat=True)
    )
    return len(Assignment.objects.bulk_create(assignments, batch_size=5000))


def upload(session: requests.Session, url: str, path: Path) -> requests.Response:
    with path.open("rb") as body:
        headers = {"Content-Type": "application/x-ndjson"}
        return session.post(url, data=body, headers=headers, timeout=3600)


def import_stepwise(base: str, slug: str, token: str, files: tuple[Path, Path]) -> dict:
    session = requests.Session()
    session.headers.update({**load.proxy_headers(base), "Authorization": f"Token {token}"})
    api = f"{base}/api/v1/campaigns/{slug}"
    started = time.perf_counter()
    for kind, path in zip(("problems", "samples"), files, strict=True):
        response = upload(session, f"{api}/{kind}/upload/", path)
        if response.status_code != 201:
            sys.exit(f"Stepwise {kind} upload: {response.status_code} {response.text[:300]}")
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "summary": response.json()}


def log_in(base: str, users: int, think: float) -> list[StepwiseLabeler]:
    """Stepwise's labelers, logged in two at a time before the clock starts (each login
    hashes a password; Label Studio's token clients have no such step)."""
    labelers = [
        StepwiseLabeler(base, f"labeler{i:03d}", think, random.Random(i)) for i in range(users)
    ]
    gate = threading.Semaphore(2)
    logins = [threading.Thread(target=lab.login, args=(gate,)) for lab in labelers]
    for thread in logins:
        thread.start()
    for thread in logins:
        thread.join()
    return labelers


def run_stepwise(args: argparse.Namespace, files: tuple[Path, Path], tmp: Path) -> dict:
    load.admin_sql(f"DROP DATABASE IF EXISTS {STEPWISE_DB} WITH (FORCE)")
    load.admin_sql(f"CREATE DATABASE {STEPWISE_DB}")
    process = None
    try:
        load.setup_django()
        schema = load.build_schema("auto")
        slug, token = seed_stepwise(args.users)
        from django.db import connection

        connection.close()
        env = load.server_env("production", tmp / "static")
        load.collect_static(env)
        port = load.free_port()
        log = tmp / "stepwise_gunicorn.log"
        process = load.start_server(port, args.workers, args.threads, env, log)
        sampler = MemorySampler(process.pid)
        sampler.start()
        base = f"http://127.0.0.1:{port}"
        sampler.phase = "import"
        imported = import_stepwise(base, slug, token, files)
        tasks = open_generation(slug)
        connection.close()
        labelers = log_in(base, args.users, args.think)
        outcome = label_then_stop(process, sampler, labelers, args.duration)
        from annotate.models import Campaign

        stored = load.stored_ratings(Campaign.objects.get(slug=slug).pk)
        check_stored(outcome, stored, len(outcome["acked"]))
        return {"schema": schema, "import": imported, "tasks": tasks, **outcome}
    finally:
        if process is not None:
            load.stop_server(process)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        load.admin_sql(f"DROP DATABASE IF EXISTS {STEPWISE_DB} WITH (FORCE)")


# --- Label Studio -----------------------------------------------------------------------------


def peer_tasks(files: tuple[Path, Path]) -> list[dict]:
    """The samples as Label Studio tasks: the problem, and the steps as paragraphs."""
    problems_path, samples_path = files
    with problems_path.open(encoding="utf-8") as handle:
        problems = {p["unique_id"]: p["problem"] for p in map(json.loads, handle)}
    tasks = []
    with samples_path.open(encoding="utf-8") as handle:
        for sample in map(json.loads, handle):
            steps = [{"author": f"Step {i + 1}", "text": t} for i, t in enumerate(sample["steps"])]
            data = {"sample": sample["id"], "problem": problems[sample["unique_id"]]}
            tasks.append({"data": {**data, "steps": steps}})
    return tasks


def setup_peer(python: Path, app_dir: Path, env: dict[str, str], users: int) -> list[str]:
    """Migrate the peer's database and make its users: their tokens, the owner's first."""
    started = time.monotonic()
    done = subprocess.run(
        [str(python), "-c", PEER_SETUP, str(users)],
        cwd=app_dir,
        env={**env, "PYTHONPATH": str(app_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"Label Studio set-up failed:\n{done.stderr[-3000:]}")
    print(f"Label Studio migrated and seeded in {time.monotonic() - started:.0f} s", flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_peer(base: str, token: str, tasks: list[dict]) -> tuple[int, dict]:
    """A project with the per-step config, then all tasks in one import request."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    project = session.post(
        f"{base}/api/projects/",
        json={"title": "ProcessBench steps", "label_config": LABEL_CONFIG},
        timeout=120,
    )
    if project.status_code != 201:
        sys.exit(f"Label Studio project: {project.status_code} {project.text[:300]}")
    pk = project.json()["id"]
    started = time.perf_counter()
    response = session.post(f"{base}/api/projects/{pk}/import", json=tasks, timeout=3600)
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        sys.exit(f"Label Studio import: {response.status_code} {response.text[:300]}")
    summary = {k: v for k, v in response.json().items() if k != "task_ids"}
    return pk, {"seconds": round(seconds, 2), "summary": summary}


def peer_sql(sql: str, *params: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(load.database_url(PEER_DB)) as conn:
        return conn.execute(sql, params).fetchall()


def run_peer(args: argparse.Namespace, files: tuple[Path, Path], tmp: Path) -> dict:
    python = peer_python()
    app_dir = peer_app_dir(python)
    load.admin_sql(f"DROP DATABASE IF EXISTS {PEER_DB} WITH (FORCE)")
    load.admin_sql(f"CREATE DATABASE {PEER_DB}")
    data_dir = tmp / "label-studio"
    data_dir.mkdir()
    env = peer_env(data_dir)
    process = None
    try:
        tokens = setup_peer(python, app_dir, env, args.users)
        port = load.free_port()
        process = load.start_server(
            port,
            args.workers,
            args.threads,
            env,
            tmp / "label_studio_gunicorn.log",
            app="core.wsgi:application",
            gunicorn=python.with_name("gunicorn"),
            cwd=app_dir,
            ready_path="/health/",
            ready_s=300,
        )
        sampler = MemorySampler(process.pid)
        sampler.start()
        base = f"http://127.0.0.1:{port}"
        sampler.phase = "import"
        project, imported = import_peer(base, tokens[0], peer_tasks(files))
        (tasks,) = peer_sql("SELECT count(*) FROM task WHERE project_id = %s", project)[0]
        labelers = [
            PeerLabeler(base, token, project, args.think, random.Random(i))
            for i, token in enumerate(tokens[1:])
        ]
        outcome = label_then_stop(process, sampler, labelers, args.duration)
        rows = peer_sql(
            "SELECT id, task_id, jsonb_array_length(result) FROM task_completion"
            " WHERE project_id = %s",
            project,
        )
        stored = {tuple(row) for row in rows}
        check_stored(outcome, stored, sum(labels for _, _, labels in outcome["acked"]))
        versions = peer_versions(python)
        return {"versions": versions, "import": imported, "tasks": tasks, **outcome}
    finally:
        if process is not None:
            load.stop_server(process)
        load.admin_sql(f"DROP DATABASE IF EXISTS {PEER_DB} WITH (FORCE)")


# --- Report -----------------------------------------------------------------------------------


def latency(result: dict, op: str, q: str) -> float | None:
    return result["latency"].get(op, {}).get(f"{q}_ms")


def figures(ours: dict, peer: dict, n: int) -> list[tuple[str, float | None, float | None, bool]]:
    """(figure, Stepwise, Label Studio, higher is better)."""
    rows = [
        ("import, samples/s", n / ours["import"]["seconds"], n / peer["import"]["seconds"], True)
    ]
    for q in ("p50", "p95"):
        peer_next = latency(peer, "next", q)
        rows.append((f"next task, claim, {q} ms", latency(ours, "next", q), peer_next, False))
        rows.append((f"next task shown, {q} ms", latency(ours, "shown", q), peer_next, False))
        rows.append((f"save, {q} ms", latency(ours, "rate", q), latency(peer, "save", q), False))
    rows += [
        ("step labels saved/s", ours["step_labels_per_s"], peer["step_labels_per_s"], True),
        ("tasks completed", ours["tasks_completed"], peer["tasks_completed"], True),
        (
            "server PSS peak, MiB",
            ours["memory_mib"]["load"]["pss"],
            peer["memory_mib"]["load"]["pss"],
            False,
        ),
        (
            "server RSS peak, MiB",
            ours["memory_mib"]["load"]["rss"],
            peer["memory_mib"]["load"]["rss"],
            False,
        ),
        ("errors", ours["errors"], peer["errors"], False),
        ("lost saves", ours["lost"], peer["lost"], False),
        ("phantom saves", ours["phantom"], peer["phantom"], False),
    ]
    return rows


def ratio(ours: float | None, peer: float | None, higher_better: bool) -> float | None:
    """How many times better Stepwise is (> 1) or worse (< 1); None when undefined."""
    if ours is None or peer is None:
        return None
    good, bad = (ours, peer) if higher_better else (peer, ours)
    return good / bad if bad else None


def print_table(rows: list[tuple[str, float | None, float | None, bool]]) -> list[dict]:
    def show(value: float | None) -> str:
        return "—" if value is None else f"{value:,.1f}" if value % 1 else f"{value:,.0f}"

    print(f"\n| figure | Stepwise | Label Studio {PEER_PINS['label-studio']} | ratio |")
    print("|---|---|---|---|")
    table = []
    for name, ours, peer, higher in rows:
        r = ratio(ours, peer, higher)
        shown = "—" if r is None else f"{r:,.1f}×"
        print(f"| {name} | {show(ours)} | {show(peer)} | {shown} |")
        table.append({"figure": name, "stepwise": ours, "label_studio": peer, "ratio": r})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000, help="samples = tasks imported")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of labeling")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn processes (both)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (both)")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds per step")
    parser.add_argument("--client-timeout", type=float, default=120.0)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    StepwiseLabeler.timeout = args.client_timeout
    load.LOAD_DB = STEPWISE_DB  # bench_labeling_load's helpers serve this database
    # Seeding in this process runs as `make` does; the server gets production settings.
    os.environ.setdefault("DJANGO_DEBUG", "true")
    with tempfile.TemporaryDirectory(prefix="stepwise_peer_") as name:
        tmp = Path(name)
        files = bench_import.write_files(tmp, args.tasks)
        print(f"{args.tasks} samples; Stepwise first, load {os.getloadavg()}", flush=True)
        ours = run_stepwise(args, files, tmp)
        print(f"Label Studio next, load {os.getloadavg()}", flush=True)
        peer = run_peer(args, files, tmp)
    result = {
        "benchmark": "peer_label_studio",
        "peer": PEER_PINS,
        "tasks": args.tasks,
        "users": args.users,
        "duration_s": args.duration,
        "think_s": args.think,
        "workers": args.workers,
        "threads": args.threads,
        "stepwise": ours,
        "label_studio": peer,
    }
    result["table"] = print_table(figures(ours, peer, args.tasks))
    print(f"(loads: Stepwise {ours['load_average_1m']}, Label Studio {peer['load_average_1m']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if ours["errors"] or ours["lost"] or ours["phantom"]:
        sys.exit(1)  # the peer's failures are figures; ours fail the benchmark


if __name__ == "__main__":
    main()
