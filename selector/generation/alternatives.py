"""Alternatives at the first error (PRM800K phase 2): other versions of the wrong step.

The generator sees the problem and the steps before the erroneous one, and is asked for the
next step only; the first step of each completion is an alternative. Blank, repeated and
identical-to-the-original alternatives are dropped, so fewer than ``m`` may come back.
"""

from __future__ import annotations

from collections.abc import Sequence

from selector.generation.prompt import split_steps
from selector.generation.solution import Generator

__all__ = ["DEFAULT_ALTERNATIVES", "propose_alternatives"]

DEFAULT_ALTERNATIVES = 4


def _same(text: str) -> str:
    return " ".join(text.split())


def propose_alternatives(
    generator: Generator,
    problem: str,
    steps_before: Sequence[str],
    m: int = DEFAULT_ALTERNATIVES,
    *,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Up to ``m`` distinct candidate steps to follow ``steps_before`` (the erroneous one excluded).

    ``exclude`` holds texts not to propose again, normally the erroneous step itself.
    """
    if m <= 0:
        return []
    config = generator.config
    completions = generator.complete(config.prompt.next_step_messages(problem, steps_before), m)
    seen = {_same(text) for text in exclude}
    alternatives = []
    for completion in completions:
        steps = split_steps(completion, config.split_rule)
        if not steps or _same(steps[0]) in seen:
            continue
        seen.add(_same(steps[0]))
        alternatives.append(steps[0])
    return alternatives
