"""Sampling solutions to problems: the loop's first step (DESIGN "Generation"). No Django here.

``make_generator(config)`` gives a backend for a GeneratorConfig; its ``generate(problems)``
yields GeneratedSolution keyed by (problem key, index), skipping the indices already stored.
The ``openai`` and ``torch`` imports wait until a backend of that kind is made.
"""

from __future__ import annotations

from selector.generation.alternatives import DEFAULT_ALTERNATIVES, propose_alternatives
from selector.generation.config import BACKENDS, GeneratorConfig
from selector.generation.prompt import DEFAULT_PROMPT, SPLIT_RULES, PromptTemplate, split_steps
from selector.generation.solution import (
    GeneratedSolution,
    GenerationError,
    GenerationStats,
    Generator,
    ProblemPrompt,
    missing_indices,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_ALTERNATIVES",
    "DEFAULT_PROMPT",
    "SPLIT_RULES",
    "GeneratedSolution",
    "GenerationError",
    "GenerationStats",
    "Generator",
    "GeneratorConfig",
    "ProblemPrompt",
    "PromptTemplate",
    "make_generator",
    "missing_indices",
    "propose_alternatives",
    "split_steps",
]


def make_generator(config: GeneratorConfig) -> Generator:
    """The backend ``config.backend`` names, ready to generate."""
    if config.backend == "local":
        from selector.generation.local_backend import LocalGenerator  # torch: on demand

        return LocalGenerator(config)
    from selector.generation.openai_backend import OpenAIGenerator  # openai: on demand

    return OpenAIGenerator(config)
