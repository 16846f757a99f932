"""A grading child process (started by :mod:`selector.grading.pool`): JSON requests on stdin,
``1``/``0`` on stdout. The pool kills it when a request overruns its time limit.
"""

from __future__ import annotations

import json
import sys
import time

from selector.grading import symbolic
from selector.grading.grader import _grade_full


def _math_verify(given: str, gt: str) -> bool:
    from math_verify import parse, verify

    gold = parse(f"${gt}$")
    pred = parse(f"${given}$")
    return bool(gold) and bool(pred) and bool(verify(gold, pred))


def _handle(request: dict) -> bool:
    op = request.get("op")
    if op == "grade":
        return _grade_full(request["given"], request["gt"])
    if op == "math_verify":
        return _math_verify(request["given"], request["gt"])
    if op == "sleep":  # for tests of the time limit
        time.sleep(float(request["seconds"]))
        return True
    return False


def serve(memory_limit: int) -> None:
    """The child's main loop: read JSON lines on stdin, answer ``1``/``0`` lines on stdout."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    if memory_limit > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):
            pass
    symbolic._parser()  # import sympy before saying we are ready
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            ok = _handle(json.loads(line))
        except BaseException:  # any failure grades as "not equal"
            ok = False
        out.write("1\n" if ok else "0\n")
        out.flush()
