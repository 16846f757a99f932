"""Helpers for the database benchmarks: a throwaway PostgreSQL database, Django set-up, RSS.

The benchmark creates `stepwise_bench` (dropped first if a previous run left it) on the server
named by DATABASE_URL, builds the tables straight from the models (as the tests do), and drops
it at the end. Each measured run happens in a child process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# STEPWISE_BENCH_DB lets two benchmarks (or two engineers) run side by side on one server.
BENCH_DB = os.environ.get("STEPWISE_BENCH_DB", "stepwise_bench")
PROCESSBENCH = ROOT / "data" / "processbench_math.jsonl"


def bench_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must name a PostgreSQL server (postgres://user@host:port/db)")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + BENCH_DB))


def _admin(sql: str) -> None:
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def create_database() -> None:
    _admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _admin(f"CREATE DATABASE {BENCH_DB}")


def drop_database() -> None:
    _admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def setup_django() -> None:
    """Point Django at the bench database (call before anything imports settings)."""
    os.environ["DATABASE_URL"] = bench_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("STEPWISE_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_tables() -> None:
    from django.apps import apps
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in apps.get_models():
            if model._meta.managed and not model._meta.proxy:
                editor.create_model(model)


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM, which (unlike ru_maxrss, kept across execve on
    Linux) does not inherit the parent's peak when the child is started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def backend_pid() -> int:
    """The PostgreSQL server process serving Django's connection (same machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), e.g. a PostgreSQL backend."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")  # server on another machine: not measurable here
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(script: Path, *args: str) -> dict:
    """Run `script --child ...` with DATABASE_URL set; its last stdout line is a JSON result."""
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, str(script), "--child", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child failed: {' '.join(args)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_step_texts(limit: int = 20_000) -> list[str]:
    """Real step texts (ProcessBench) so step lengths are realistic."""
    steps: list[str] = []
    with open(PROCESSBENCH, encoding="utf-8") as handle:
        for line in handle:
            steps.extend(json.loads(line)["steps"])
            if len(steps) >= limit:
                break
    return steps
