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
# A backslash escape (skipped whole) or a brace.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)


def _closing_brace(text: str, start: int, scanned: int, closers: list[int]) -> int | None:
    """Position of the ``}`` matching the ``{`` at ``start`` (nested; ``\\x`` skipped); or None.

    Scans leftwards, once over the whole text across calls: the braces in ``[scanned, len)``
    are already counted, ``closers`` holding the ``}`` among them still unmatched. Scanning
    forward from every unclosed ``\\boxed{`` instead is quadratic on hostile model output.
    """
    if not closers and text.find("}", start, scanned) < 0:
        return None  # nothing to the right can close it (the common hostile case, in C)
    for token in reversed(list(_BRACE_TOKEN.finditer(text, start, scanned))):
        brace = token.group()
        if brace == "}":
            closers.append(token.start())
        elif brace == "{" and closers:
            close = closers.pop()
            if token.start() == start:
                return close
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{…}``/``\\fbox{…}``/``\\boxed x`` in ``text``."""
    end = len(text)
    # Latest occurrence of each command before `end`, searched again only once passed.
    found = {cmd: text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS}
    closers: list[int] = []  # see _closing_brace
    scanned = len(text)
    while True:
        for cmd, at in found.items():
            if at >= end:
                found[cmd] = text.rfind(cmd, 0, end)
        pos = max(found.values())
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
            close = _closing_brace(text, j, scanned, closers)
            scanned = j
            if close is not None:
                return text[j + 1 : close].strip()
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
