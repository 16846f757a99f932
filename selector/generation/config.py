"""A campaign's generator settings, snapshotted as JSON on each Generation."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from selector.generation.prompt import DEFAULT_PROMPT, SPLIT_RULES, PromptTemplate

__all__ = ["BACKENDS", "GeneratorConfig"]

BACKENDS = ("openai", "local")


@dataclass(frozen=True)
class GeneratorConfig:
    """Where and how to sample solutions.

    ``backend="openai"``: any server speaking ``/v1/chat/completions`` (vLLM, SGLang,
    llama.cpp's server, OpenAI) at ``base_url`` serving ``model``. ``backend="local"``:
    ``model`` is a Hugging Face causal-LM directory, and ``concurrency`` is the number of
    sequences per ``generate()`` batch. The API key is never stored: ``api_key_env`` names
    the environment variable that holds it, read at call time.
    """

    backend: str = "openai"
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    n: int = 0  # solutions per problem per generation; 0 = import only (PRM800K scale: 1000)
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024  # PRM800K discarded solutions with no answer within 1024 tokens
    stop: tuple[str, ...] = ()
    prompt: PromptTemplate = DEFAULT_PROMPT
    split_rule: str = "blank_line"
    concurrency: int = 8
    max_n_per_request: int = 0  # 0 = ask for all n at once until the server says otherwise
    timeout: float = 300.0  # seconds per request
    retries: int = 5  # per request, on 429, 5xx, timeouts and dropped connections
    seed: int | None = None

    def __post_init__(self) -> None:
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "stop", tuple(self.stop))
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.split_rule not in SPLIT_RULES:
            problems.append(f"split_rule must be one of {tuple(SPLIT_RULES)}")
        if self.n < 0 or self.max_n_per_request < 0 or self.retries < 0:
            problems.append("n, max_n_per_request and retries must be >= 0")
        if self.max_tokens < 1 or self.concurrency < 1 or self.timeout <= 0:
            problems.append("max_tokens, concurrency and timeout must be positive")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            problems.append("temperature must be >= 0 and top_p in (0, 1]")
        if problems:
            raise ValueError("; ".join(problems))

    def api_key(self) -> str | None:
        """The key from the environment now, or None when no variable is named or set."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def replace(self, **changes: Any) -> GeneratorConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; holds the variable's name, never the key."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**data, "stop": list(self.stop), "prompt": self.prompt.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Inverse of ``to_dict``; missing keys take their defaults, unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator settings: {', '.join(sorted(unknown))}")
        fields = dict(data)
        if "prompt" in fields:
            fields["prompt"] = PromptTemplate.from_dict(fields["prompt"])
        return cls(**fields)
