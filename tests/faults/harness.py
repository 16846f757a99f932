"""The fault tests' parts: a real gunicorn whose database or broker connection goes through a
`TcpProxy` the test controls, labelers as HTTP clients, and the counts of what the clients saw
acknowledged against what was stored."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings

from annotate.models import StepRating
from tests.faults.proxy import TcpProxy
from tests.workers.pipeline.test_pipeline_worker import group_members
from tests.workers.pipeline.test_pipeline_worker import pytestmark as worker_test_marks

REPO = Path(__file__).resolve().parents[2]
BROKER = settings.CELERY_BROKER_URL
PASSWORD = "fault-password"
START_TIMEOUT_S = 90
TASK = re.compile(r"/tasks/(\d+)/")

SERVICES = worker_test_marks  # PostgreSQL and Redis, or skip with the reason


def through(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def target_of(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def wait_until(condition, timeout: float, what: str, log=lambda: "") -> None:
    """Poll `condition` (never a fixed sleep): generous deadlines for a loaded 2-core box."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{log()}")


class WebServer:
    """`gunicorn config.wsgi` as a real process group, on a free loopback port."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *, threads: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "gunicorn.log"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        cmd = [str(gunicorn), "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1"]
        cmd += ["--worker-class", "gthread" if threads > 1 else "sync", "--threads", str(threads)]
        cmd += ["--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.answers, START_TIMEOUT_S, "gunicorn to answer", self.log)

    def answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited\n{self.log()}")
        try:
            return requests.get(f"{self.base}/healthz/live", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def workers(self) -> list[int]:
        """PIDs of the master's live worker processes."""
        return [pid for pid in group_members(self.proc.pid) if pid != self.proc.pid]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if group_members(self.proc.pid):
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


@dataclass
class Outcomes:
    """What one labeler's client saw: acknowledged ratings, and every answer that was not."""

    acked: set[tuple[int, int, int]] = field(default_factory=set)
    attempted: set[tuple[int, int, int]] = field(default_factory=set)
    # Every answer ≥ 400: (status, Retry-After header, start of the body).
    refusals: list[tuple[int, str | None, str]] = field(default_factory=list)
    transport_errors: int = 0
    slowest_s: float = 0.0  # the longest answer, for the report
    claims: int = 0


class Labeler:
    """A browser-like client: session cookie, CSRF token, the page's POSTs."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.username = base, username
        self.session = requests.Session()
        self.out = Outcomes()

    def login(self) -> None:
        page = self.session.get(f"{self.base}/accounts/login/", timeout=60)
        assert page.status_code == 200, page.status_code
        response = self.session.post(
            f"{self.base}/accounts/login/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.session.cookies["csrftoken"],
            },
            allow_redirects=False,
            timeout=60,
        )
        assert response.status_code == 302, response.status_code

    def post(self, path: str, data: dict | None = None, timeout: float = 60) -> requests.Response:
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", ""), "HX-Request": "true"}
        return self.session.post(
            self.base + path,
            data=data or {},
            headers=headers,
            allow_redirects=False,
            timeout=timeout,
        )

    def _tried(self, path: str, data: dict | None = None) -> requests.Response | None:
        """One POST; a refusal or a lost connection is recorded and gives None."""
        start = time.monotonic()
        try:
            response = self.post(path, data)
        except requests.RequestException:
            self.out.transport_errors += 1
            return None
        self.out.slowest_s = max(self.out.slowest_s, time.monotonic() - start)
        if response.status_code >= 400:
            refusal = (response.status_code, response.headers.get("Retry-After"), response.text)
            self.out.refusals.append(refusal)
            return None
        return response

    def claim(self) -> int | None:
        """POST /next/: the claimed task's id; None when the request failed."""
        response = self._tried("/next/")
        if response is None:
            return None
        match = TASK.search(response.headers.get("Location", ""))
        assert response.status_code == 302 and match, (response.status_code, response.text[:300])
        self.out.claims += 1
        return int(match.group(1))

    def rate(self, task: int, step: int, rating: int) -> str:
        """One rating: "acked" (200), "refused" (409: e.g. a retry of a rating that was stored
        though its answer was lost, which finished the task) or "failed"."""
        data = {"step": step, "rating": rating, "elapsed_ms": 500}
        self.out.attempted.add((task, step, rating))
        response = self._tried(f"/tasks/{task}/rate/", data)
        if response is None:
            refused = self.out.refusals and self.out.refusals[-1][0] == 409
            return "refused" if refused else "failed"
        assert response.status_code == 200, (response.status_code, response.text[:300])
        self.out.acked.add((task, step, rating))
        return "acked"


def label_tasks(labeler: Labeler, ratings: list[int], stop: threading.Event) -> None:
    """Claim and rate tasks until `stop`, retrying a failed action the way the page's retry
    does (after a short pause), so every action ends acknowledged."""
    while not stop.is_set():
        task = labeler.claim()
        if task is None:
            time.sleep(0.2)
            continue
        for step, rating in enumerate(ratings):
            outcome = labeler.rate(task, step, rating)
            while outcome == "failed" and not stop.is_set():
                time.sleep(0.2)
                outcome = labeler.rate(task, step, rating)
            if outcome != "acked":
                break


def stored_ratings(assignments) -> set[tuple[int, int, int]]:
    rows = StepRating.objects.filter(label__assignment__in=assignments, rating__isnull=False)
    return set(rows.values_list("label__assignment_id", "step", "rating"))


def acked(labelers: list[Labeler]) -> set[tuple[int, int, int]]:
    return set().union(*(labeler.out.acked for labeler in labelers))


def refusals(labelers: list[Labeler]) -> list[tuple[int, str | None, str]]:
    return [refusal for labeler in labelers for refusal in labeler.out.refusals]


def attempted(labelers: list[Labeler]) -> set[tuple[int, int, int]]:
    return set().union(*(labeler.out.attempted for labeler in labelers))


def start_labelers(base: str, names: list[str], ratings: list[int]):
    """Log each in, then run `label_tasks` on a thread each; returns (labelers, stop, threads)."""
    labelers = [Labeler(base, name) for name in names]
    for labeler in labelers:
        labeler.login()
    stop = threading.Event()
    threads = [
        threading.Thread(target=label_tasks, args=(labeler, ratings, stop), daemon=True)
        for labeler in labelers
    ]
    for thread in threads:
        thread.start()
    return labelers, stop, threads


def stop_labelers(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a labeler's client hung"


STEPS = ["Let $x = 2$.", "Then $x^2 = 4$.", "Add one: $5$.", "# Answer\n\n5"]


def labeling_world(campaign, names: list[str], n_samples: int):
    """Labelers of `campaign` with an open generation of `n_samples` unclaimed tasks."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from tests.factories import make_generation, make_sample, open_slots

    # The server's hasher (the suite's settings use MD5, which the server does not accept);
    # few iterations, so a login costs no second of CPU.
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, "faultsalt", iterations=1000)
    model = get_user_model()
    users = model.objects.bulk_create(model(username=name, password=hashed) for name in names)
    campaign.labelers.add(*users)
    generation = make_generation(campaign)
    open_slots(generation, [make_sample(campaign, STEPS) for _ in range(n_samples)])
    return generation
