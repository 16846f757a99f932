"""Final-answer extraction from model-written solutions.

The answer is the text after the last ``# Answer`` heading of the final step (PRM800K's
format: ``"...\\n\\n# Answer\\n\\n29"``); else the content of the last ``\\boxed{…}``
(or ``\\fbox{…}``, or ``\\boxed 5`` without braces) anywhere in the solution; else None.
"""

from __future__ import annotations

import re

__all__ = ["extract_answer", "extract_answer_from_text", "last_boxed"]

# A Markdown heading "# Answer" (any level, optional colon); its answer follows it.
_ANSWER_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]*Answer\b[ \t]*:?", re.MULTILINE | re.IGNORECASE)
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_BARE_END = re.compile(r"[\s$]")


def _braced(text: str, start: int) -> str | None:
    """Content of the ``{…}`` at ``start`` (nested braces; ``\\{`` skipped); None if unclosed."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{…}``/``\\fbox{…}``/``\\boxed x`` in ``text``."""
    end = len(text)
    while True:
        pos = max(text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS)
        if pos < 0:
            return None
        cmd = "\\boxed" if text.startswith("\\boxed", pos) else "\\fbox"
        i = pos + len(cmd)
        if i < len(text) and (text[i].isalpha()):
            end = pos  # another command such as \boxedfoo
            continue
        j = i
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            content = _braced(text, j)
            if content is not None:
                return content.strip()
        elif j < len(text):
            # "\boxed 5": the token up to the next space or "$"
            m = _BARE_END.search(text, j)
            return text[j : m.start() if m else len(text)].strip()
        end = pos  # unclosed (truncated) box: look further back


def _after_heading(step: str) -> str | None:
    if "nswer" not in step and "NSWER" not in step:
        return None  # fast path: most steps have no heading
    matches = list(_ANSWER_HEADING.finditer(step))
    if not matches:
        return None
    last = matches[-1]
    answer = step[last.end() :].strip()
    boxed = last_boxed(answer) if "\\boxed" in answer or "\\fbox" in answer else None
    if boxed is not None and answer.strip("$ .").startswith(("\\boxed", "\\fbox")):
        answer = boxed  # "# Answer\n\n$\boxed{5}$" -> "5"
    return answer or None


def extract_answer(steps: list[str]) -> str | None:
    """The final answer of a solution given as steps (see the module docstring); or None."""
    if not steps:
        return None
    answer = _after_heading(steps[-1])
    if answer:
        return answer
    for step in reversed(steps):
        if "\\boxed" in step or "\\fbox" in step:
            boxed = last_boxed(step)
            if boxed is not None:
                return boxed or None
    return None


def extract_answer_from_text(text: str) -> str | None:
    """The final answer of a whole response: after its last ``# Answer`` heading, else boxed."""
    return extract_answer([text]) if text else None
