"""String normalization of final answers: the MATH (Hendrycks) rules and a canonical text form.

Two normalizations, both pure string functions (no sympy, microseconds per call, cached):

* :func:`normalize_answer` is the MATH benchmark's answer normalization (Hendrycks et al.),
  plus a few safe additions: thousands separators, trailing full stop, ``\\mbox``/``\\text``
  wrappers, plain ``$``/``%``. Two answers that normalize to the same string are equal.
* :func:`canonical_form` is the PRM800K grader's second normalization: it turns LaTeX into a
  plain, sympy-readable text (``\\frac{1}{2}`` → ``1/2``, ``\\sqrt{2}`` → ``sqrt(2)``,
  ``7\\frac{1}{2}`` → ``(7+1/2)``), drops units, dollars, percent, degrees, braces, spaces and
  case. The LaTeX → text step is :func:`latex_to_text`, a small converter written for short
  answers (not a general LaTeX parser).
"""

from __future__ import annotations

import contextlib
import re
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "canonical_form",
    "is_int_string",
    "latex_to_text",
    "normalize_answer",
    "parse_number",
    "strip_thousands",
]

# Answers longer than this are only stripped, never normalized (no real final answer is that long).
MAX_NORMALIZE_CHARS = 2000
# LaTeX deeper than this is not converted (hostile input; the recursive converter would blow up).
MAX_LATEX_DEPTH = 60

# ---------------------------------------------------------------------------------------------
# MATH (Hendrycks) normalization
# ---------------------------------------------------------------------------------------------

_ENCLOSING_TEXT = re.compile(r"\\(?:text|textbf|mbox|mathrm)\{")
_SQRT_BARE = re.compile(r"\\sqrt\s*([^{\s\\\[])")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_THOUSANDS_LATEX = re.compile(r"(\d)(?:\{,\}|,\\!|,\\,)(\d{3})")
_SHORT_LHS = re.compile(r"[A-Za-z][A-Za-z0-9']?|[0-9][A-Za-z]")
_INT_SLASH = re.compile(r"(-?\d+)/(\d+)")


def _fix_fracs(s: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}``, ``\\frac1{2}`` → ``\\frac{1}{2}``, ``\\frac{1}2`` → ..."""
    if "\\frac" not in s:
        return s
    parts = s.split("\\frac")
    out = [parts[0]]
    for part in parts[1:]:
        out.append("\\frac")
        if not part:
            continue
        if part[0] == "{":
            close = _matching_brace(part, 0)
            if close < 0 or close + 1 >= len(part) or part[close + 1] == "{":
                out.append(part)
                continue
            # numerator braced, denominator a bare character
            out.append(part[: close + 1] + "{" + part[close + 1] + "}" + part[close + 2 :])
            continue
        if len(part) < 2:
            out.append(part)
            continue
        a, b = part[0], part[1]
        if b == "{":
            out.append("{" + a + "}" + part[1:])
        else:
            out.append("{" + a + "}{" + b + "}" + part[2:])
    return "".join(out)


def _matching_brace(s: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start``, or -1."""
    depth = 0
    i = start
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2  # an escaped brace does not count
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _unwrap_text(s: str) -> str:
    """``\\text{Tuesday}`` → ``Tuesday`` when one ``\\text{…}`` spans the whole answer."""
    m = _ENCLOSING_TEXT.match(s)
    if m is not None and s.endswith("}") and _matching_brace(s, m.end() - 1) == len(s) - 1:
        return s[m.end() : -1]
    return s


def strip_thousands(s: str) -> str:
    """``1,000,000`` → ``1000000`` when the whole string is a comma-grouped number."""
    if "," in s and _THOUSANDS.fullmatch(s):
        return s.replace(",", "")
    return s


@lru_cache(maxsize=1 << 16)
def normalize_answer(answer: str | None) -> str | None:
    """MATH-benchmark (Hendrycks) normalization of a final answer; ``None`` stays ``None``.

    Removes line breaks, ``\\!``, ``\\left``/``\\right``, degrees (``^\\circ``), ``\\$``/``$``,
    ``\\%``/``%``, a trailing ``\\text{ units}``, spaces, a trailing full stop, and an
    enclosing ``\\text{}``; ``\\tfrac``/``\\dfrac`` → ``\\frac``; ``\\frac12`` →
    ``\\frac{1}{2}``; ``\\sqrt2`` → ``\\sqrt{2}``; adds leading zeros (``.5`` → ``0.5``);
    ``0.5`` → ``\\frac{1}{2}``; ``a/b`` → ``\\frac{a}{b}`` for integers; drops a short
    ``x =`` prefix; strips thousands separators (``1,000``, ``1{,}000``, ``1,\\!000``).
    """
    if answer is None:
        return None
    s = answer.strip()
    if len(s) > MAX_NORMALIZE_CHARS:
        return s
    s = _unwrap_text(s).strip()
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\circ", "")
    s = s.replace("\\$", "").replace("$", "")
    # MATH drops "units" written as a trailing "\text{ ...}" (with the space)
    for marker in ("\\text{ ", "\\mbox{ "):
        if marker in s:
            s = s.split(marker)[0]
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    # a short left-hand side naming a variable ("x = 5", "k=3") is dropped
    parts = s.split("=")
    if len(parts) == 2 and _SHORT_LHS.fullmatch(parts[0].strip()):
        s = parts[1]
    if "\\sqrt" in s:
        s = _SQRT_BARE.sub(r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if s.endswith(".") and len(s) > 1:
        s = s.rstrip(".")
    if "," in s:
        s = _THOUSANDS_LATEX.sub(r"\1\2", s) if "{" in s or "\\" in s else s
        s = strip_thousands(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    m = _INT_SLASH.fullmatch(s)
    if m is not None:
        s = "\\frac{" + m.group(1) + "}{" + m.group(2) + "}"
    return s


# ---------------------------------------------------------------------------------------------
# LaTeX → plain text
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\\[a-zA-Z]+\*?|\\.|\s+|.", re.DOTALL)

_FRACS = frozenset({"frac", "dfrac", "tfrac", "cfrac"})
_BINOMS = frozenset({"binom", "dbinom", "tbinom", "choose"})
_WRAPPERS = frozenset(
    {
        "text", "textrm", "textbf", "textit", "textnormal", "textsf", "texttt", "mbox", "hbox",
        "mathrm", "mathbf", "mathit", "mathsf", "mathtt", "mathnormal", "boldsymbol", "bm",
        "operatorname", "mathbb", "mathcal", "mathfrak", "hat", "widehat", "vec", "tilde",
        "widetilde", "bar", "dot", "ddot", "underline", "emph", "pmb", "textup", "fbox",
        "boxed",
    }
)  # fmt: skip
_DROP = frozenset(
    {
        "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl",
        "biggr", "Biggl", "Biggr", "middle", "displaystyle", "textstyle", "scriptstyle",
        "limits", "nolimits", "quad", "qquad", "enspace", "thinspace", "negthinspace", "circ",
        "degree", "$", "%", ",", ";", ":", "!", " ", "\n", "\t", "cr", "hline", "nonumber",
        "notag", "protect", "ensuremath", "allowbreak", "mathclose", "mathopen",
    }
)  # fmt: skip
_SKIP_ARG = frozenset({"hspace", "vspace", "hspace*", "vspace*", "label", "tag", "phantom"})
_SYMBOLS = {
    "pi": "pi", "infty": "inf", "infin": "inf", "cdot": "*", "times": "*", "ast": "*",
    "div": "/", "le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=",
    "geqslant": ">=", "ne": "!=", "neq": "!=", "lt": "<", "gt": ">", "approx": "≈",
    "cup": "∪", "cap": "∩", "setminus": "∖", "in": "∈", "pm": "±", "mp": "∓", "to": "→",
    "rightarrow": "→", "dots": "...", "ldots": "...", "cdots": "...", "prime": "'", "{": "{",
    "}": "}", "#": "#", "&": "&", "_": "_", "\\": ",", "lbrace": "{", "rbrace": "}",
    "langle": "(", "rangle": ")", "lvert": "|", "rvert": "|", "vert": "|", "mid": "|",
    "lfloor": "floor(", "rfloor": ")", "lceil": "ceiling(", "rceil": ")", "emptyset": "∅",
    "varnothing": "∅", "angle": "angle", "triangle": "triangle", "perp": "⊥",
    "parallel": "∥", "sim": "~", "cong": "≅", "equiv": "≡", "neg": "¬", "land": "∧",
    "lor": "∨", "wedge": "∧", "vee": "∨", "star": "*",
}  # fmt: skip
_FUNCTIONS = frozenset(
    {
        "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
        "tanh", "log", "ln", "exp", "lg", "min", "max", "gcd", "lcm", "det", "deg", "arg",
    }
)  # fmt: skip
_UNICODE = str.maketrans(
    {
        "π": "pi", "√": "sqrt", "∞": "inf", "·": "*", "×": "*", "−": "-", "÷": "/", "°": "",
        "\u2009": "", "\u00a0": " ", "≤": "<=", "≥": ">=", "≠": "!=", "–": "-",
    }
)  # fmt: skip
_OPERATOR_COMMANDS = frozenset(
    {
        "cdot", "times", "div", "pm", "mp", "right", "bigr", "Bigr", "biggr", "Biggr", "le",
        "leq", "ge", "geq", "ne", "neq", "lt", "gt", "cup", "cap", "to", "approx", "quad",
        "qquad", ",", ";", "!", ":", "\\", "%", "$", "end", "circ", "setminus", "in", "}",
        "rangle", "rbrace", "rvert", "rfloor", "rceil", "ast", "star",
    }
)  # fmt: skip
_ATOM = re.compile(r"-?\d+(?:\.\d+)?|[A-Za-z]|pi|inf|sqrt\(\w+\)")
_DEN_ATOM = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]|pi|sqrt\(\w+\)")
_EXP_ATOM = re.compile(r"-?\d+|[A-Za-z]|pi")


class _Converter:
    """Recursive-descent LaTeX → text over a token list; output is sympy-friendly text."""

    def __init__(self, tokens: list[str]) -> None:
        self.toks = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def next(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def skip_space(self) -> None:
        while self.pos < len(self.toks) and self.toks[self.pos].isspace():
            self.pos += 1

    def sequence(self, stop: str | None = None) -> str:
        out: list[str] = []
        last_was_command = prev_alpha = False
        while self.pos < len(self.toks):
            tok = self.toks[self.pos]
            if stop is not None and tok == stop:
                return "".join(out)
            self.pos += 1
            piece = self.item(tok, out)
            if not piece or piece.isspace():
                out.append(piece)
                continue
            is_command = tok.startswith("\\")
            if prev_alpha and piece[0].isalpha() and (is_command or last_was_command):
                out.append("*")  # "i\sqrt3" -> "i*sqrt(3)", "\pi r" -> "pi*r"
            last_was_command = is_command
            prev_alpha = piece.rstrip()[-1:].isalpha()
            out.append(piece)
        return "".join(out)

    def group(self) -> str:
        """Content of a ``{...}`` group whose ``{`` was just consumed."""
        content = self.sequence("}")
        self.pos += 1  # the closing brace (or past the end)
        return content

    def argument(self) -> str:
        """A macro argument: a braced group, a command, or one character."""
        self.skip_space()
        tok = self.next()
        if tok is None:
            return ""
        if tok == "{":
            return self.group()
        if tok.startswith("\\"):
            return self.command(tok[1:], [])
        return tok

    def optional(self) -> str | None:
        """An optional ``[...]`` argument, if present."""
        self.skip_space()
        if self.peek() != "[":
            return None
        self.pos += 1
        content = self.sequence("]")
        self.pos += 1
        return content

    def implicit_product_follows(self) -> bool:
        """Whether the next token multiplies what precedes it without an operator (or is ^)."""
        self.skip_space()
        tok = self.peek()
        if tok is None:
            return False
        if tok.startswith("\\"):
            return tok[1:] not in _OPERATOR_COMMANDS
        return tok.isalnum() or tok in "(^"

    def item(self, tok: str, out: list[str]) -> str:
        if tok == "{":
            return self.group()
        if tok == "}":
            return ""
        if tok == "^":
            arg = self.argument().strip()
            return "^" + (arg if _EXP_ATOM.fullmatch(arg) else "(" + arg + ")")
        if tok == "_":
            return "_" + self.argument().strip()
        if tok == "&":
            return ","
        if tok.startswith("\\"):
            return self.command(tok[1:], out)
        return tok

    def command(self, name: str, out: list[str]) -> str:
        if name in _FRACS:
            num = self.argument().strip()
            den = self.argument().strip()
            num = num if _ATOM.fullmatch(num) else "(" + num + ")"
            den = den if _DEN_ATOM.fullmatch(den) else "(" + den + ")"
            if self.implicit_product_follows():
                return " (" + num + "/" + den + ")"  # "\frac{\sqrt3}{2}i" is (sqrt(3)/2)*i
            # the leading space lets "7\frac12" read as the mixed number 7 1/2
            return " " + num + "/" + den
        if name == "sqrt":
            index = self.optional()
            arg = self.argument().strip()
            if index:
                return "root(" + arg + "," + index.strip() + ")"
            return "sqrt(" + arg + ")"
        if name in _BINOMS:
            a = self.argument().strip()
            b = self.argument().strip()
            return "binomial(" + a + "," + b + ")"
        if name in _DROP:
            if name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "middle"):
                self.skip_space()
                if self.peek() == ".":
                    self.pos += 1  # "\left." is an invisible delimiter
            return ""
        if name in _SKIP_ARG:
            self.argument()
            return ""
        if name in _WRAPPERS:
            return self.argument()
        if name in ("begin", "end"):
            self.argument()  # environment name
            if name == "begin" and self.peek() == "{":
                self.pos += 1
                self.group()  # array column spec
            return ""
        if name in ("overline", "overset", "underset", "stackrel"):
            arg = self.argument()
            if name != "overline":
                return self.argument()
            return "overline(" + arg + ")"
        if name in _FUNCTIONS:
            self.skip_space()
            nxt = self.peek()
            if nxt is None or nxt in ("(", "^", "_") or nxt.startswith("\\left"):
                return name
            return name + "(" + self.argument() + ")"
        sym = _SYMBOLS.get(name)
        if sym is not None:
            return sym
        return name  # Greek letters and anything unknown: the bare name


def _max_brace_depth(s: str) -> int:
    depth = best = 0
    for c in s:
        if c == "{":
            depth += 1
            if depth > best:
                best = depth
        elif c == "}":
            depth -= 1
    return best


def latex_to_text(s: str) -> str:
    """Convert a short LaTeX answer to plain text (``\\frac{a}{b}`` → ``a/b`` etc.).

    Raises ``ValueError`` for input too deeply nested to convert safely.
    """
    if _max_brace_depth(s) > MAX_LATEX_DEPTH:
        raise ValueError("LaTeX too deeply nested")
    conv = _Converter(_TOKEN.findall(s))
    return conv.sequence().strip()


# ---------------------------------------------------------------------------------------------
# Canonical (PRM800K-style) text form
# ---------------------------------------------------------------------------------------------

_UNITS = (
    "degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week",
    "month", "year", "foot", "feet", "inch", "yard", "unit", "cent", "dollar",
)  # fmt: skip
_UNIT_RE = re.compile(
    r"(?<![A-Za-z\\])(?:"
    + "|".join(_UNITS)
    + r")(?:es)?(?:s)?(?![A-Za-z])( *\})? *(?:\^\{?[0-9]+\}?)?"
)
_UNIT_WORDS = re.compile(r"(?<![A-Za-z\\])(?:square|sq\.?|cubic)(?![A-Za-z])")
_CIRC = re.compile(r"\^ *\{? *\\circ *\}?")
_INV_SPACE = re.compile(r",\\! *")
_DASH_SPACE = re.compile(r"- +")
_MIXED = re.compile(r"(?<![\w.)/^*])(-?)(\d+) +(\d+/\d+)(?![\w.(/^])")
_SCI = re.compile(r"(-?\d+(?:\.\d+)?)\*10\^\(?(-?\d{1,3})\)?")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d{1,3})?")
_INT = re.compile(r"-?\d+")
_SIMPLE_FRAC = re.compile(r"-?\d+/\d+")
_MAX_INT_DIGITS = 4000  # Python refuses int() of longer decimal strings


@lru_cache(maxsize=1 << 16)
def parse_number(s: str) -> Fraction | None:
    """The exact value of a plain decimal (``-1.25``, ``.5``, ``3e2``) or ``a/b``; else None."""
    if len(s) > _MAX_INT_DIGITS:
        return None
    if _NUMBER.fullmatch(s):
        try:
            return Fraction(s)
        except (ValueError, ZeroDivisionError):
            return None
    if _SIMPLE_FRAC.fullmatch(s):
        num, den = s.split("/")
        if int(den) == 0:
            return None
        return Fraction(int(num), int(den))
    return None


@lru_cache(maxsize=1 << 16)
def is_int_string(s: str) -> bool:
    """True for an integer literal, also written with thousands commas or as ``2.0``/``3e2``."""
    s = strip_thousands(s)
    if _INT.fullmatch(s):
        return True
    if not _NUMBER.fullmatch(s):
        return False
    value = parse_number(s)
    return value is not None and value.denominator == 1


def _format_number(value: Fraction) -> str:
    """Exact decimal text of a number whose denominator is 2^a·5^b, else ``p/q``."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = value * 10**places
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
    return (sign + digits[:-places] + "." + digits[-places:]).rstrip("0").rstrip(".")


def _mixed(m: re.Match[str]) -> str:
    sign, whole, frac = m.group(1), m.group(2), m.group(3)
    # a mixed number is whole + fraction; a minus sign applies to both parts
    return ("-(" if sign else "(") + whole + "+" + frac + ")"


@lru_cache(maxsize=1 << 16)
def canonical_form(expr: str | None) -> str | None:
    """PRM800K-style canonical text of an answer (see the module docstring); None stays None."""
    if expr is None:
        return None
    s = expr.strip()
    if len(s) > MAX_NORMALIZE_CHARS:
        return s
    s = _unwrap_text(s)
    if not s.isascii():
        s = s.translate(_UNICODE)
    s = s.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    s = s.replace(" or ", " , ").replace(" and ", " , ")
    s = s.replace("\\text{or}", ",").replace("\\text{and}", ",")
    s = s.replace("trillion", "*10^12").replace("billion", "*10^9").replace("million", "*10^6")
    s = _UNIT_RE.sub(r"\1", s)  # keeps the "}" closing a \text{cm}
    s = _UNIT_WORDS.sub("", s)
    s = _CIRC.sub("", s)
    if len(s) > 1 and s[0] == "{" and s[-1] == "}" and _matching_brace(s, 0) == len(s) - 1:
        s = s[1:-1]
    s = _INV_SPACE.sub("", s)
    if "{,}" in s:
        s = s.replace("{,}", ",")
    s = s.strip()
    if s.endswith(".") and len(s) > 1 and not s.endswith(".."):
        s = s[:-1]
    if _NUMBER.fullmatch(s):
        value = parse_number(s)
        if value is not None and value.denominator == 1:
            s = str(value.numerator)
    if "\\" in s:
        with contextlib.suppress(ValueError, RecursionError):  # unconvertible: keep raw text
            s = latex_to_text(s)
    s = _DASH_SPACE.sub("-", s)
    if " " in s:
        s = _MIXED.sub(_mixed, s)
        s = s.replace(" ", "")
    s = s.replace("{", "").replace("}", "")
    if s.endswith(".") and len(s) > 1 and not s.endswith(".."):
        s = s[:-1]  # a full stop that closed a \text{…}, as in "4:30 \text{ p.m.}"
    s = s.lower()
    s = strip_thousands(s)
    if "*10^" in s:
        sci = _SCI.fullmatch(s)
        if sci is not None:
            # scientific notation is an exact number: 1.5*10^6 -> 1500000
            s = _format_number(Fraction(sci.group(1)) * Fraction(10) ** int(sci.group(2)))
    if _NUMBER.fullmatch(s) and ("e" in s or "." in s):
        value = parse_number(s)
        if value is not None and value.denominator == 1:
            s = str(value.numerator)
    elif _INT.fullmatch(s) and len(s) <= _MAX_INT_DIGITS:
        s = str(int(s))  # "007" -> "7", "-0" -> "0"
    return s
