"""Hard time limits for grading: sympy runs in a pool of small reusable child processes.

A child (:mod:`selector.grading.child`) is a plain ``python -c`` subprocess speaking one JSON
request / one line of reply over pipes. A child that overruns its deadline (or dies) is killed
by pid and replaced, so hostile answers can never hang the caller, from any thread (no
``signal.alarm``), and no ``fork`` of a threaded parent or re-import of its ``__main__``
happens.

* :func:`call` runs one request on a pooled idle child (thread-safe).
* :func:`run_many` runs many requests on N children at once, each under its own deadline.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PoolError", "call", "run_many", "shutdown"]

# Seconds a fresh worker may take to import sympy; not counted in any per-pair limit.
STARTUP_TIMEOUT = 60.0
# Address-space cap of a worker (bytes); a runaway expression raises MemoryError there.
MEMORY_LIMIT = int(os.environ.get("STEPWISE_GRADER_MEMORY_LIMIT", str(4 << 30)))
# Idle workers kept for later single calls.
MAX_IDLE = max(4, min(os.cpu_count() or 1, 8))

_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from selector.grading.child import serve; serve({limit})"
)


class PoolError(RuntimeError):
    """A worker process could not be started."""


class _Died(Exception):
    pass


class _Process:
    """One child process with a line-buffered reader."""

    def __init__(self) -> None:
        code = _BOOT.format(root=_ROOT, limit=MEMORY_LIMIT)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.started = time.monotonic()
        self.ready = False
        self._buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, payload: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(payload + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _Died from exc

    def read_lines(self) -> list[str]:
        """Read what is available (call only when the fd is readable); complete lines."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            raise _Died
        self._buf += chunk
        lines = []
        while b"\n" in self._buf:
            line, _, self._buf = self._buf.partition(b"\n")
            lines.append(line.decode("utf-8", "replace"))
        return lines

    def wait_line(self, timeout: float) -> str | None:
        """The next line, or None after ``timeout`` seconds. Raises _Died on EOF."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        pending: list[str] = []
        while not pending:
            if b"\n" in self._buf:
                line, _, self._buf = self._buf.partition(b"\n")
                return line.decode("utf-8", "replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if poller.poll(max(1, int(remaining * 1000))):
                pending = self.read_lines()
        first, rest = pending[0], pending[1:]
        if rest:
            self._buf = b"\n".join(r.encode() for r in rest) + b"\n" + self._buf
        return first

    def wait_ready(self) -> None:
        while not self.ready:
            try:
                line = self.wait_line(STARTUP_TIMEOUT)
            except _Died:
                line = None
            if line is None:
                self.kill()
                raise PoolError("grading worker did not start")
            self.ready = line == "ready"

    def kill(self) -> None:
        """Kill this worker (its own pid only) and reap it."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def close(self) -> None:
        """Ask the worker to exit (EOF on stdin); kill it if it does not."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


# ---------------------------------------------------------------------------------------------
# Single calls, from any thread
# ---------------------------------------------------------------------------------------------

_lock = threading.Lock()
_idle: list[_Process] = []


def _acquire() -> _Process:
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None or worker.proc.poll() is not None:
        worker = _Process()
    worker.wait_ready()
    return worker


def _release(worker: _Process) -> None:
    with _lock:
        if len(_idle) < MAX_IDLE:
            _idle.append(worker)
            return
    worker.close()


def _replace_later() -> None:
    # start a replacement now so the next call does not wait for sympy to import
    with _lock:
        if not _idle:
            _idle.append(_Process())


def call(request: dict, timeout: float) -> str | None:
    """Run one request in a worker under a hard wall-clock limit; None on timeout or crash."""
    payload = json.dumps(request).encode()
    worker = _acquire()
    try:
        worker.send(payload)
    except _Died:
        worker.kill()  # a pooled worker that died while idle: one retry on a fresh one
        worker = _Process()
        worker.wait_ready()
        try:
            worker.send(payload)
        except _Died:
            worker.kill()
            return None
    try:
        reply = worker.wait_line(timeout)
    except _Died:
        reply = None  # the request crashed the worker
    if reply is None:
        worker.kill()  # overran its deadline, or died
        _replace_later()
        return None
    _release(worker)
    return reply


def prestart(count: int) -> None:
    """Start workers now (they import sympy in the background) for an imminent run_many."""
    with _lock:
        missing = count - len(_idle)
        _idle.extend(_Process() for _ in range(max(0, missing)))


def idle_pids() -> list[int]:
    """Pids of the pooled idle workers (for tests and diagnostics)."""
    with _lock:
        return [w.pid for w in _idle]


def shutdown() -> None:
    """Stop all pooled workers."""
    with _lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.close()


def _forget_after_fork() -> None:
    # a forked child must not share its parent's workers (their pipes are the parent's)
    global _lock
    _lock = threading.Lock()
    _idle.clear()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


# ---------------------------------------------------------------------------------------------
# Many calls on N workers
# ---------------------------------------------------------------------------------------------


def run_many(requests: Sequence[dict], processes: int, timeout: float) -> list[str | None]:
    """Run requests on ``processes`` workers; each request hard-limited to ``timeout`` s."""
    results: list[str | None] = [None] * len(requests)
    if not requests:
        return results
    processes = max(1, min(processes, len(requests)))
    todo = deque(range(len(requests)))
    workers: list[_Process] = []
    with _lock:  # reuse pooled idle workers first: they are already warm
        while _idle and len(workers) < processes:
            workers.append(_idle.pop())
    workers += [_Process() for _ in range(processes - len(workers))]
    busy: dict[_Process, tuple[int, float]] = {}
    startup_failures = 0
    poller = select.poll()
    by_fd: dict[int, _Process] = {}

    def add(worker: _Process) -> None:
        by_fd[worker.fd] = worker
        poller.register(worker.fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    def replace(worker: _Process) -> None:
        poller.unregister(worker.fd)
        del by_fd[worker.fd]
        worker.kill()
        workers.remove(worker)
        busy.pop(worker, None)
        if todo:
            fresh = _Process()
            workers.append(fresh)
            add(fresh)

    for worker in workers:
        add(worker)
    try:
        while todo or busy:
            now = time.monotonic()
            for worker in workers:
                if worker.ready and worker not in busy and todo:
                    index = todo.popleft()
                    try:
                        worker.send(json.dumps(requests[index]).encode())
                    except _Died:
                        todo.appendleft(index)
                        replace(worker)
                        break
                    busy[worker] = (index, now + timeout)
            if not workers:
                raise PoolError("no grading worker could be started")
            deadlines = [deadline for _, deadline in busy.values()]
            wait = min(deadlines) - now if deadlines else 1.0
            events = poller.poll(max(1, int(wait * 1000)))
            for fd, _event in events:
                worker = by_fd.get(fd)
                if worker is None:
                    continue
                try:
                    lines = worker.read_lines()
                except _Died:
                    if worker in busy:
                        index, _ = busy[worker]
                        results[index] = None  # the request crashed it
                    else:
                        startup_failures += 1
                        if startup_failures > 3 * processes:
                            raise PoolError("grading workers keep dying at start") from None
                    replace(worker)
                    continue
                for line in lines:
                    if not worker.ready:
                        worker.ready = line == "ready"
                    elif worker in busy:
                        index, _ = busy.pop(worker)
                        results[index] = line
            now = time.monotonic()
            for worker, (index, deadline) in list(busy.items()):
                if now >= deadline:
                    results[index] = None  # overran: killed and replaced
                    replace(worker)
            for worker in list(workers):
                if not worker.ready and now - worker.started > STARTUP_TIMEOUT:
                    replace(worker)
                    startup_failures += 1
    finally:
        for worker in workers:
            if worker not in busy and worker.proc.poll() is None:
                _release(worker)  # a worker still starting is kept too: it will be ready soon
            else:
                worker.kill()
    return results
