"""Final-answer grading following the PRM800K grader's rules, with a hard time limit per pair.

Written from the description of OpenAI's PRM800K grader (``grade_answer``); what is
implemented, in order:

1. ``None`` (no answer) is wrong. If the MATH (Hendrycks) normalizations of both strings are
   equal (:func:`~selector.grading.normalize.normalize_answer`), the answer is right.
2. Matrices (``\\begin{pmatrix}…``) are compared cell by cell with these same rules; a matrix
   never equals a non-matrix. (An addition: PRM800K compares them as text.)
3. Both strings get the PRM800K canonical form
   (:func:`~selector.grading.normalize.canonical_form`: LaTeX → text, no units, ``$``, ``%``,
   degrees, braces, spaces or case). Equal canonical forms are right; an empty answer is wrong.
4. Tuples and intervals are compared element-wise: ``(1,2)``, ``[a,b)``. When the ground
   truth has more than one element its brackets must match the answer's exactly (``(1,2]``
   is not ``(1,2)``), and the number of elements must agree. Bare comma lists (``1, 2``) and
   sets (``\\{1,2\\}``) are compared as unordered collections (an addition: PRM800K keeps the
   order); unions of intervals part by part.
5. Per element, as PRM800K does:

   * **Unreduced fractions are strict**: when both elements are plain fractions ``a/b`` they
     must be identical, so ``\\frac{2}{4}`` is wrong for ``\\frac{1}{2}`` (sympy is not
     consulted, since it would reduce them).
   * **Integers are strict**: when exactly one of the two is an integer literal (``5``,
     ``-3``, ``1,000``, also ``2.0``, which PRM800K, like this grader, normalizes to ``2``),
     the answer is wrong without sympy: ``4/2``, ``2^2`` or ``\\sqrt{4}`` do not match
     ``2``; ``2.5`` does not match an integer either. PRM800K calls a float an integer when it
     is within 1e-7 of one; here the test is exact, so ``1.99999999`` is not ``2``.
   * Otherwise plain numbers compare exactly (``0.5`` = ``1/2``), and anything else goes to
     sympy: ``simplify(gt - given) == 0`` (``\\sqrt{8}`` = ``2\\sqrt{2}``, ``-2+7i`` =
     ``7i-2``, ``3+2x`` = ``2x+3``), guarded as PRM800K guards it (at most two unknown
     letters, no power towers, no long exponents; see :mod:`selector.grading.symbolic`).
     Mixed numbers read as sums (``7\\frac12`` = ``15/2``; ``-7\\frac12`` = ``-15/2``, where
     PRM800K would read ``-7+1/2``). Explicit scientific notation (``1.5\\times10^{6}``) is
     read as the number it denotes (an addition), so it is an integer literal when integral.

Everything except the sympy call runs in the caller's process in microseconds; the sympy part
runs in a child process killed after ``timeout`` seconds (the pair is then wrong), so hostile
input (``10^{10^{10000}}``, thousands of nested braces) cannot hang the caller.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from fractions import Fraction

import selector.grading.pool as pool
from selector.grading.normalize import (
    MAX_NORMALIZE_CHARS,
    canonical_form,
    is_int_string,
    normalize_answer,
    parse_number,
)
from selector.grading.symbolic import allow_sympy, sympy_equal

__all__ = ["DEFAULT_TIMEOUT", "grade_answer", "grade_many", "math_verify_agrees"]

DEFAULT_TIMEOUT = float(os.environ.get("STEPWISE_GRADE_TIMEOUT", "5.0"))
# Unordered collections larger than this are compared in order (matching is quadratic).
MAX_UNORDERED = 12

Tri = bool | None  # True / False / undecided (needs sympy)
SympyCheck = Callable[[str, str], Tri]

_MATRIX = re.compile(
    r"(?:\\left\s*[(\[]\s*)?\\begin\{(?P<env>[pbBvV]?matrix|smallmatrix|array)\}"
    r"(?:\{[^{}]*\})?(?P<body>.*?)\\end\{(?P=env)\}(?:\s*\\right\s*[)\]])?",
    re.DOTALL,
)
_ROW_SEP = re.compile(r"\\\\(?:\s*\\hline)?")
_SET = re.compile(r"(?:\\left\s*)?\\\{(?P<body>.*?)(?:\\right\s*)?\\\}", re.DOTALL)
_FRAC = re.compile(r"-?\d+/\d+")
_INT = re.compile(r"-?\d{1,1000}")
_PLAIN_INT = re.compile(r"\s*-?\d{1,1000}\s*")
_VAR = re.compile(r"[a-z]")
_OPEN = "(["
_CLOSE = ")]"


def _all(results: Iterable[Tri]) -> Tri:
    """Three-valued AND: False wins, then undecided, then True."""
    undecided = False
    for result in results:
        if result is False:
            return False
        if result is None:
            undecided = True
    return None if undecided else True


def _defer(_a: str, _b: str) -> Tri:
    return None


def _split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _outer_bracketed(s: str) -> bool:
    """Whether ``s`` is one bracket pair, ``(…)``/``[…]``/mixed, around its whole content."""
    if len(s) < 2 or s[0] not in _OPEN or s[-1] not in _CLOSE:
        return False
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
    return depth == 0


def _split(s: str) -> tuple[str, list[str], str]:
    """(open bracket, elements, close bracket) of a tuple/interval, or ("", elements, "")."""
    if _outer_bracketed(s):
        return s[0], _split_top(s[1:-1], ","), s[-1]
    return "", _split_top(s, ","), ""


def _is_tuple(s: str) -> bool:
    return _outer_bracketed(s) and len(_split_top(s[1:-1], ",")) > 1


def _matrix(s: str) -> list[list[str]] | None:
    if "\\begin" not in s:
        return None
    m = _MATRIX.fullmatch(s.strip().strip("$").strip())
    if m is None:
        return None
    rows = [row for row in _ROW_SEP.split(m.group("body")) if row.strip()]
    return [[cell.strip() for cell in row.split("&")] for row in rows] or None


def _set_body(s: str) -> str | None:
    if "\\{" not in s:
        return None
    m = _SET.fullmatch(s.strip().strip("$").strip())
    if m is None or "\\{" in m.group("body") or "\\}" in m.group("body"):
        return None
    return m.group("body")


def _matching(table: list[list[Tri]], accept: tuple[Tri, ...]) -> bool:
    """Whether rows can be matched one-to-one to columns through accepted cells (Kuhn)."""
    n = len(table)
    owner: list[int] = [-1] * n

    def augment(row: int, seen: list[bool]) -> bool:
        for col in range(n):
            if table[row][col] in accept and not seen[col]:
                seen[col] = True
                if owner[col] < 0 or augment(owner[col], seen):
                    owner[col] = row
                    return True
        return False

    return all(augment(row, [False] * n) for row in range(n))


def _unordered(gt_elems: list[str], given_elems: list[str], sym: SympyCheck) -> Tri:
    in_order = _all(_element(t, g, sym) for t, g in zip(gt_elems, given_elems, strict=True))
    if in_order is True:
        return True
    table = [[_element(t, g, sym) for g in given_elems] for t in gt_elems]
    if _matching(table, (True,)):
        return True
    if not _matching(table, (True, None)):
        return False
    return None


_ARITH_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[-+*/()]")
_ARITH_CHARS = re.compile(r"[0-9.+\-*/()]{1,80}")


def _exact_value(s: str) -> Fraction | None:
    """Exact value of plain rational arithmetic (digits, + - * / and parentheses), else None.

    Decides sums such as mixed numbers (``(1+8/91)``) in-process instead of in sympy.
    """
    if not _ARITH_CHARS.fullmatch(s):
        return None
    tokens = _ARITH_TOKEN.findall(s)
    if "".join(tokens) != s:
        return None
    pos = 0

    def expr() -> Fraction:
        nonlocal pos
        value = term()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            value = value + term() if op == "+" else value - term()
        return value

    def term() -> Fraction:
        nonlocal pos
        value = unary()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            value = value * unary() if op == "*" else value / unary()
        return value

    def unary() -> Fraction:
        nonlocal pos
        if pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            return unary() if op == "+" else -unary()
        if pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            value = expr()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise ValueError("unbalanced")
            pos += 1
            return value
        if pos >= len(tokens) or tokens[pos] in "+-*/()":
            raise ValueError("operand expected")
        pos += 1
        return Fraction(tokens[pos - 1])

    try:
        value = expr()
    except (ValueError, ZeroDivisionError, RecursionError):
        return None
    return value if pos == len(tokens) else None


def _element(t: str, g: str, sym: SympyCheck) -> Tri:
    """Compare one canonical ground-truth element with one canonical given element."""
    if t == g:
        return True
    if not t or not g:
        return False
    if _INT.fullmatch(t) and _INT.fullmatch(g):
        return int(t) == int(g)
    if _is_tuple(t) or _is_tuple(g):
        return _structured(t, g, False, False, sym)
    if "=" in t or "=" in g:
        te, ge = t.split("="), g.split("=")
        if len(te) == 2 and len(ge) == 2:
            return _all(_element(a, b, sym) for a, b in zip(te, ge, strict=True))
        # "x=5" against "5": a lone variable on the left says nothing
        if len(te) == 2 and len(ge) == 1 and _VAR.fullmatch(te[0]):
            return _element(te[1], g, sym)
        if len(ge) == 2 and len(te) == 1 and _VAR.fullmatch(ge[0]):
            return _element(t, ge[1], sym)
        return False
    if _FRAC.fullmatch(t) and _FRAC.fullmatch(g):
        return False  # unreduced fractions are strict
    if is_int_string(t) != is_int_string(g):
        return False  # an integer must be given as an integer
    nt, ng = parse_number(t), parse_number(g)
    if nt is None and ng is not None:
        nt = _exact_value(t)
    elif ng is None and nt is not None:
        ng = _exact_value(g)
    elif nt is None and ng is None and _ARITH_CHARS.fullmatch(t) and _ARITH_CHARS.fullmatch(g):
        nt, ng = _exact_value(t), _exact_value(g)
    if nt is not None and ng is not None:
        return nt == ng
    if len(t) == 1 and len(g) == 1 and t.isalpha() and g.isalpha():
        return False  # two different letters (multiple-choice answers)
    if not allow_sympy(t, g):
        return False
    return sym(t, g)


def _structured(ct: str, cg: str, t_set: bool, g_set: bool, sym: SympyCheck) -> Tri:
    """Compare canonical strings as unions, tuples, intervals, sets or single elements."""
    if ct == cg:
        return True
    if "∪" in ct or "∪" in cg:
        pt, pg = _split_top(ct, "∪"), _split_top(cg, "∪")
        if len(pt) != len(pg):
            return False
        if len(pt) > 1:
            return _all(_structured(a, b, False, False, sym) for a, b in zip(pt, pg, strict=True))
    ot, et, clt = _split(ct)
    og, eg, clg = _split(cg)
    if t_set:
        ot, et, clt = "{", _split_top(ct, ","), "}"
    if g_set:
        og, eg, clg = "{", _split_top(cg, ","), "}"
    et = [e.strip() for e in et]
    eg = [e.strip() for e in eg]
    if len(et) != len(eg):
        return False
    if len(et) == 1:
        return _element(et[0], eg[0], sym)
    t_unordered, g_unordered = ot in ("", "{"), og in ("", "{")
    if t_unordered or g_unordered:
        if not (t_unordered and g_unordered):
            return False
        if len(et) <= MAX_UNORDERED:
            return _unordered(et, eg, sym)
    elif ot != og or clt != clg:
        return False  # interval/tuple brackets must match
    return _all(_element(t, g, sym) for t, g in zip(et, eg, strict=True))


def _grade(given: str | None, gt: str | None, sym: SympyCheck, depth: int = 0) -> Tri:
    if given is None or gt is None:
        return False
    if _PLAIN_INT.fullmatch(given) and _PLAIN_INT.fullmatch(gt):
        return int(given) == int(gt)  # the most common case, decided in a microsecond
    if len(given) > MAX_NORMALIZE_CHARS or len(gt) > MAX_NORMALIZE_CHARS or depth > 2:
        return given.strip() == gt.strip()
    ngt = normalize_answer(gt)
    if not ngt:
        return False
    if normalize_answer(given) == ngt:
        return True
    mt, mg = _matrix(gt), _matrix(given)
    if mt is not None or mg is not None:
        if mt is None or mg is None or [len(r) for r in mt] != [len(r) for r in mg]:
            return False
        cells = zip((c for row in mt for c in row), (c for row in mg for c in row), strict=True)
        return _all(_grade(g, t, sym, depth + 1) for t, g in cells)
    st, sg = _set_body(gt), _set_body(given)
    ct = canonical_form(gt if st is None else st)
    cg = canonical_form(given if sg is None else sg)
    if not ct or not cg:
        return False
    return _structured(ct, cg, st is not None, sg is not None, sym)


def _grade_cheap(given: str | None, gt: str | None) -> Tri:
    """Everything but sympy, in-process: True, False, or None when sympy must decide."""
    return _grade(given, gt, _defer)


def _grade_full(given: str | None, gt: str | None) -> bool:
    """The complete grade with sympy; runs inside a grading child process, under its time limit."""
    return _grade(given, gt, sympy_equal) is True


# Pairs a child process decided, so repeated answers are not sent again (bounded; cleared when
# full).
_decided: dict[tuple[str, str], bool] = {}
_decided_lock = threading.Lock()
_MAX_DECIDED = 1 << 16


def _remember(key: tuple[str, str], value: bool) -> None:
    with _decided_lock:
        if len(_decided) >= _MAX_DECIDED:
            _decided.clear()
        _decided[key] = value


def grade_answer(given: str | None, ground_truth: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether ``given`` is a correct final answer for ``ground_truth`` (PRM800K rules).

    Never takes much longer than ``timeout`` seconds: the sympy part runs in a child process
    that is killed and replaced if it overruns, and the pair is then graded wrong.
    Thread-safe.
    """
    cheap = _grade_cheap(given, ground_truth)
    if cheap is not None:
        return cheap
    assert given is not None
    key = (given, ground_truth)
    known = _decided.get(key)
    if known is not None:
        return known
    reply = pool.call({"op": "grade", "given": given, "gt": ground_truth}, timeout)
    if reply is None:
        return False  # timed out or crashed: not remembered, a later call may have more time
    result = reply == "1"
    _remember(key, result)
    return result


def grade_many(
    pairs: Iterable[tuple[str | None, str]],
    processes: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[bool]:
    """Grade many ``(given, ground_truth)`` pairs; same answers as :func:`grade_answer`.

    Pairs decided by string normalization (most of them) never leave this process; each
    distinct undecided pair goes once to a pool of ``processes`` child processes (default: the
    CPU count), each pair hard-limited to ``timeout`` seconds.
    """
    processes = processes or os.cpu_count() or 1
    results: list[bool] = []
    undecided: dict[tuple[str, str], list[int]] = {}
    memo: dict[tuple[str | None, str], Tri] = {}
    for index, (given, gt) in enumerate(pairs):
        key = (given, gt)
        if key in memo:
            verdict = memo[key]
        else:
            verdict = _grade_cheap(given, gt)
            if verdict is None:
                verdict = _decided.get(key)  # type: ignore[arg-type]
                if verdict is None and not undecided:
                    pool.prestart(processes)  # warm up while the cheap pass goes on
            memo[key] = verdict
        results.append(bool(verdict))
        if verdict is None:
            undecided.setdefault(key, []).append(index)  # type: ignore[arg-type]
    if undecided:
        keys = list(undecided)
        requests = [{"op": "grade", "given": g, "gt": t} for g, t in keys]
        replies = pool.run_many(requests, processes, timeout)
        for key, reply in zip(keys, replies, strict=True):
            result = reply == "1"
            if reply is not None:
                _remember(key, result)
            for index in undecided[key]:
                results[index] = result
    return results


def math_verify_agrees(
    given: str | None, ground_truth: str, timeout: float = DEFAULT_TIMEOUT
) -> bool:
    """Second opinion from the math-verify package, under the same hard time limit."""
    if given is None:
        return False
    reply = pool.call({"op": "math_verify", "given": given, "gt": ground_truth}, timeout)
    return reply == "1"
