"""THE integration test: a whole generation on PostgreSQL + Redis through real Celery worker
processes, one of which is SIGKILLed (with its pool children) in the middle of scoring.

A new worker picks the work up: the killed worker's unacked chunk comes back after the
broker's visibility timeout (shortened here through the environment), finished chunks are not
scored again, and every pool sample ends with exactly one Score.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from annotate.generations import start_generation as enqueue_generation
from annotate.models import Assignment, Generation, Score
from tests.factories import TINY_ENV, make_pool, reference_selection
from workers.models import ScoringChunk

REPO = Path(__file__).resolve().parents[3]
BROKER = settings.CELERY_BROKER_URL

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="a worker process needs a shared database: set DATABASE_URL=postgres://… (CI does)",
    ),
    pytest.mark.skipif(
        not BROKER.startswith("redis://"),
        reason="needs a Redis broker: set CELERY_BROKER_URL=redis://… (CI does)",
    ),
]

N_PROBLEMS, PER_PROBLEM = 20, 21  # 419 pool samples (one of problem 0 has no answer)
CHUNK, SUB_BATCH = 40, 8  # 10 chunks of two problems, 6 sub-batches each
OPEN_TIMEOUT_S = 120


def database_url() -> str:
    """The pytest-django test database, as the worker process must see it."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


class Workers:
    """Celery workers started as real processes, each the leader of its own process group."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            **TINY_ENV,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": BROKER,
            "STEPWISE_MODEL_DIR": str(tmp_path / "models"),
            "STEPWISE_SCORING_CHUNK": str(CHUNK),
            "STEPWISE_SCORING_SUB_BATCH": str(SUB_BATCH),
            # A dead worker's unacked chunk is handed out again 8 s after it was delivered,
            # checked every second (production: 2 h, every 100 s).
            "CELERY_VISIBILITY_TIMEOUT": "8",
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            "PYTHONUNBUFFERED": "1",
            # One torch thread: a tiny model on a shared 2-core box is ~20× faster so.
            "OMP_NUM_THREADS": "1",
        }

    def start(self, name: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker"]
        cmd += ["-Q", "gpu,default", "-c", "1", "--pool", "prefork", "-n", f"{name}@%h"]
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
        return self.spawn(name, cmd)

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        """Start `cmd` in its own process group (so a test can kill it whole), logging to a file."""
        log = (self.tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the whole group (main process and pool children); wait until none is left."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for proc in self.procs:
            if group_members(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path):
    flush_broker()
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
    flush_broker()


def wait_for(condition, timeout: float, what: str, log: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{log}")


@pytest.mark.django_db(transaction=True)
def test_killed_worker_loses_nothing_and_duplicates_nothing(campaign, workers):
    campaign.overlap = 2
    campaign.k = 3
    campaign.save()
    pool = make_pool(campaign, n_problems=N_PROBLEMS, per_problem=PER_PROBLEM)
    first = workers.start("first")

    generation = enqueue_generation(campaign)  # committed at once: queued right away
    assert generation.status == Generation.Status.PENDING
    assert generation.checkpoint_id is None, "the campaign has no checkpoint: bootstrap one"

    wait_for(
        lambda: Score.objects.exists() or first.poll() is not None,
        90,
        "the first scores",
        workers.log("first"),
    )
    workers.kill(first)

    assert first.poll() is not None
    assert group_members(first.pid) == [], "a pool child outlived the kill"
    generation.refresh_from_db()
    scored_at_kill = Score.objects.count()
    assert generation.status == Generation.Status.SCORING, workers.log("first")
    assert 0 < scored_at_kill < len(pool), "the kill must land in the middle of scoring"
    assert generation.progress_done == scored_at_kill  # progress and rows commit together
    assert generation.progress_total == len(pool)
    done_at_kill = {
        c.pk: c.sample_count for c in ScoringChunk.objects.filter(generation=generation, done=True)
    }
    partial = scored_at_kill - sum(done_at_kill.values())

    second = workers.start("second")
    wait_for(
        lambda: (
            Generation.objects.filter(
                pk=generation.pk, status__in=[Generation.Status.OPEN, Generation.Status.FAILED]
            ).exists()
            or second.poll() is not None
        ),
        OPEN_TIMEOUT_S,
        "the generation to open",
        workers.log("second"),
    )
    workers.kill(second)

    generation.refresh_from_db()
    assert generation.status == Generation.Status.OPEN, generation.error + workers.log("second")
    checkpoint = generation.checkpoint
    assert checkpoint is not None and checkpoint.base_model == "bootstrap"
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == checkpoint.pk

    # Exactly one Score per pool sample (the unique pair rules out duplicates; the counts
    # rule out lost or double-counted work).
    scored = list(Score.objects.filter(checkpoint=checkpoint).values_list("sample_id", flat=True))
    assert sorted(scored) == pool
    assert generation.progress_done == generation.progress_total == len(pool)
    chunks = list(ScoringChunk.objects.filter(generation=generation))
    assert len(chunks) >= 10 and all(c.done for c in chunks)
    assert sum(c.sample_count for c in chunks) == len(pool)
    # Chunks finished before the kill were not scored again …
    assert all(c.attempts == 1 for c in chunks if c.pk in done_at_kill)
    # … and the one cut off mid-way was delivered again (after the visibility timeout).
    if partial:
        assert max(c.attempts for c in chunks if c.pk not in done_at_kill) >= 2

    picked = list(generation.selections.order_by("rank").values_list("sample_id", flat=True))
    assert len(picked) == campaign.k * N_PROBLEMS
    assert picked == reference_selection(campaign, checkpoint.pk, generation.params, generation.pk)
    assert Assignment.objects.filter(generation=generation).count() == 2 * len(picked)
