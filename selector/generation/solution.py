"""What a generator is asked for and what it gives back, the same for every backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from selector.generation.config import GeneratorConfig
from selector.generation.prompt import Message, split_steps
from selector.grading import extract_answer

__all__ = [
    "GeneratedSolution",
    "GenerationError",
    "GenerationStats",
    "Generator",
    "ProblemPrompt",
    "Progress",
    "missing_indices",
]

# Called as progress(done, total) after each finished request or batch.
Progress = Callable[[int, int], None]


class GenerationError(RuntimeError):
    """A request failed for good (retries spent, or an error that retrying cannot fix)."""


@dataclass(frozen=True)
class ProblemPrompt:
    """One problem to solve; ``key`` is the caller's id for it (e.g. the Problem's pk)."""

    key: str
    problem: str


@dataclass(frozen=True)
class GeneratedSolution:
    """Solution ``index`` of problem ``problem_key``: (problem, generation, index) is its key."""

    problem_key: str
    index: int
    text: str
    steps: list[str]
    answer: str | None
    finish_reason: str | None = None  # "stop", "length" (truncated), ...
    completion_tokens: int | None = None  # None where the server reports per request only

    @classmethod
    def from_text(
        cls,
        problem_key: str,
        index: int,
        text: str | None,
        rule: str,
        finish_reason: str | None = None,
        completion_tokens: int | None = None,
    ) -> GeneratedSolution:
        steps = split_steps(text or "", rule)
        return cls(
            problem_key=problem_key,
            index=index,
            text=text or "",
            steps=steps,
            answer=extract_answer(steps),
            finish_reason=finish_reason,
            completion_tokens=completion_tokens,
        )

    @property
    def has_answer(self) -> bool:
        """False for empty or unparsable outputs: kept as samples, excluded from selection."""
        return self.answer is not None


@dataclass
class GenerationStats:
    """Running totals of one generator, safe to update from worker threads."""

    requests: int = 0
    retries: int = 0
    solutions: int = 0
    without_answer: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {name: value for name, value in vars(self).items() if name != "_lock"}


class Generator(Protocol):
    """A backend: samples whole solutions, and raw completions for alternatives."""

    config: GeneratorConfig
    stats: GenerationStats

    def generate(
        self,
        problems: Sequence[ProblemPrompt],
        n: int | None = None,
        existing: Mapping[str, Collection[int]] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[GeneratedSolution]: ...

    def complete(self, messages: list[Message], n: int) -> list[str]: ...


def missing_indices(
    problems: Sequence[ProblemPrompt], n: int, existing: Mapping[str, Collection[int]] | None
) -> list[tuple[ProblemPrompt, list[int]]]:
    """Each problem with the indices in ``range(n)`` not stored yet; complete ones left out."""
    existing = existing or {}
    todo = []
    for problem in problems:
        stored = set(existing.get(problem.key, ()))
        indices = [i for i in range(n) if i not in stored]
        if indices:
            todo.append((problem, indices))
    return todo
