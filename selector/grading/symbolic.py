"""The sympy part of grading: guards, parsing canonical text, and symbolic equality.

Only the grading child process (:mod:`selector.grading.child`) calls :func:`sympy_equal`; sympy is
imported lazily so that importing the grading package stays cheap. :func:`allow_sympy` is a
pure string check and runs in the caller's process too.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["allow_sympy", "sympy_equal"]

# PRM800K refuses expressions with more than two unknown letters ("unknown text").
MAX_UNKNOWN_LETTERS = 2
MAX_SYMPY_CHARS = 300
MAX_PAREN_DEPTH = 20
MAX_EXPONENT_DIGITS = 3

_KNOWN_NAMES = re.compile(
    r"sqrt|root|binomial|arcsin|arccos|arctan|sinh|cosh|tanh|sin|cos|tan|cot|sec|csc|log|ln|exp"
    r"|pi|inf|oo|floor|ceiling|abs"
)
_ALLOWED = re.compile(r"[0-9a-z+\-*/^().,! ]*")
_ATTRIBUTE = re.compile(r"\.[a-z_]")
_LONG_NUMBER = re.compile(r"\d{" + str(MAX_EXPONENT_DIGITS + 1) + ",}")
_BIG_FACTORIAL = re.compile(r"\d{4,}!|!!")


def _exponents_ok(expr: str) -> bool:
    """No power towers and no exponent literal longer than MAX_EXPONENT_DIGITS digits."""
    i = expr.find("^")
    while i >= 0:
        j = i + 1
        if j < len(expr) and expr[j] in "+-":
            j += 1
        if j < len(expr) and expr[j] == "(":
            depth = 0
            k = j
            while k < len(expr):
                if expr[k] == "(":
                    depth += 1
                elif expr[k] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            exponent = expr[j : k + 1]
            if "^" in exponent or _LONG_NUMBER.search(exponent):
                return False
            end = k + 1
        else:
            k = j
            while k < len(expr) and (expr[k].isalnum() or expr[k] == "."):
                k += 1
            if sum(c.isdigit() for c in expr[j:k]) > MAX_EXPONENT_DIGITS:
                return False
            end = k
        if end < len(expr) and expr[end] == "^":
            return False  # a^b^c
        i = expr.find("^", i + 1)
    return True


def allow_sympy(a: str, b: str) -> bool:
    """Whether the pair of canonical strings may be handed to sympy at all (cheap guards)."""
    expr = f"({a})-({b})"
    if len(expr) > MAX_SYMPY_CHARS or not _ALLOWED.fullmatch(expr):
        return False
    if "**" in expr or "//" in expr or _ATTRIBUTE.search(expr) or _BIG_FACTORIAL.search(expr):
        return False
    if "," in expr and "root(" not in expr and "binomial(" not in expr:
        return False  # tuples are compared element-wise before sympy
    letters = {c for c in _KNOWN_NAMES.sub("", expr) if c.isalpha()}
    if len(letters) > MAX_UNKNOWN_LETTERS:
        return False
    depth = 0
    for c in expr:
        if c == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                return False
        elif c == ")":
            depth -= 1
    return _exponents_ok(expr)


@lru_cache(maxsize=1)
def _parser() -> tuple[Any, Any, dict[str, Any]]:
    import sympy
    from sympy.parsing import sympy_parser

    transformations = (
        *sympy_parser.standard_transformations,
        sympy_parser.implicit_multiplication_application,
    )
    local = {"i": sympy.I, "inf": sympy.oo, "oo": sympy.oo, "ln": sympy.log}
    return sympy, (sympy_parser.parse_expr, transformations), local


def _parse(text: str) -> Any:
    _, (parse_expr, transformations), local = _parser()
    return parse_expr(
        text.replace("^", "**"), local_dict=dict(local), transformations=transformations
    )


# Values substituted for free symbols when probing two expressions numerically.
_PROBES = ((0.31, 0.57, 0.83), (1.7, 2.3, 2.9))


def _numerically_different(sympy: Any, ea: Any, eb: Any) -> bool:
    """True when ``ea`` and ``eb`` clearly differ at some probe point (30-digit evaluation).

    Evaluations that fail or are not finite prove nothing; then sympy.simplify decides.
    """
    symbols = sorted(ea.free_symbols | eb.free_symbols, key=str)
    for probe in _PROBES if symbols else _PROBES[:1]:
        subs = {
            sym: sympy.Float(probe[k % len(probe)] + k // len(probe))
            for k, sym in enumerate(symbols)
        }
        try:
            va = sympy.N(ea, 30, subs=subs)
            vb = sympy.N(eb, 30, subs=subs)
            if not (va.is_number and vb.is_number and va.is_finite and vb.is_finite):
                continue
            if abs(va - vb) > sympy.Float("1e-8") * max(abs(va), abs(vb), 1):
                return True
        except Exception:
            continue
    return False


def sympy_equal(a: str, b: str) -> bool:
    """True when sympy proves canonical expressions ``a`` and ``b`` equal (simplify(a-b) == 0).

    For expressions without free symbols and without floating-point literals, an evaluation
    to 60 significant digits is a second try (it settles nested radicals that simplify misses).
    Any parse or evaluation error means False. Call only under a hard time limit.
    """
    if not allow_sympy(a, b):
        return False
    sympy = _parser()[0]
    try:
        ea = _parse(a)
        eb = _parse(b)
        if not isinstance(ea, sympy.Expr) or not isinstance(eb, sympy.Expr):
            return False
        diff = ea - eb
        if diff == 0:
            return True
        if _numerically_different(sympy, ea, eb):
            return False  # a point where they differ proves inequality; skip simplify
        if sympy.simplify(diff) == 0:
            return True
        if diff.free_symbols or diff.has(sympy.Float) or "." in a or "." in b:
            return False
        value = sympy.N(diff, 60)
        size = abs(sympy.N(ea, 60))
        if not (value.is_number and value.is_finite and size.is_finite):
            return False
        return bool(abs(value) <= max(size, 1) * sympy.Float(10) ** -45)
    except Exception:
        return False
