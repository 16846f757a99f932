"""Sampling from a local Hugging Face causal LM: batched ``generate()``, bf16 on CUDA.

The model directory is loaded from local files only and without remote code. Prompts go
through the tokenizer's chat template (a plain "Problem:/Solution:" layout where it has
none), left-padded so that every row's answer starts at the same column; each batch holds
``config.concurrency`` sequences.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from selector.generation.config import GeneratorConfig
from selector.generation.prompt import Message
from selector.generation.solution import (
    GeneratedSolution,
    GenerationStats,
    ProblemPrompt,
    Progress,
    missing_indices,
)

__all__ = ["LocalGenerator"]

_PLAIN_ROLES = {"system": "", "user": "Problem: ", "assistant": "Solution: "}


@dataclass(frozen=True)
class _Sampled:
    text: str
    finish_reason: str
    tokens: int


class LocalGenerator:
    """Generator backend for a local causal-LM directory (``config.model``)."""

    def __init__(self, config: GeneratorConfig, *, device: str | None = None) -> None:
        if config.backend != "local":
            raise ValueError(f"LocalGenerator needs backend 'local', not {config.backend!r}")
        self.config = config
        self.stats = GenerationStats()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(
            config.model, local_files_only=True, trust_remote_code=False
        )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            config.model, dtype=dtype, local_files_only=True, trust_remote_code=False
        ).to(self.device)
        self.model.eval()

    def render(self, messages: list[Message]) -> str:
        """The prompt text the model continues."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        turns = [_PLAIN_ROLES[m["role"]] + m["content"] for m in messages]
        return "\n\n".join([*turns, _PLAIN_ROLES["assistant"].rstrip()])

    def _sample(self, prompts: list[str]) -> list[_Sampled]:
        config = self.config
        tokenizer = self.tokenizer
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.device)
        # top_k=0: no top-k cut unless asked for, as on the OpenAI-compatible servers.
        sampling = {"do_sample": False}
        if config.temperature > 0:
            sampling = {"do_sample": True, "temperature": config.temperature}
            sampling.update(top_p=config.top_p, top_k=0)
        stop = list(config.stop)
        with torch.inference_mode():
            output = self.model.generate(
                **batch,
                max_new_tokens=config.max_tokens,
                pad_token_id=tokenizer.pad_token_id,
                stop_strings=stop or None,
                tokenizer=tokenizer if stop else None,
                **sampling,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
        ends = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        sampled = []
        for row in new_tokens:
            length = next((i for i, token in enumerate(row) if token in ends), None)
            tokens = row if length is None else row[:length]
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            stopped = length is not None or cut >= 0
            sampled.append(
                _Sampled(
                    text=text[:cut] if cut >= 0 else text,
                    finish_reason="stop" if stopped else "length",
                    tokens=len(tokens),
                )
            )
        self.stats.add(
            requests=1,
            prompt_tokens=int(batch["attention_mask"].sum()),
            completion_tokens=sum(s.tokens for s in sampled),
        )
        return sampled

    def generate(
        self,
        problems: Sequence[ProblemPrompt],
        n: int | None = None,
        existing: Mapping[str, Collection[int]] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[GeneratedSolution]:
        """Yield solutions ``0..n-1`` of each problem except the indices in ``existing``."""
        n = self.config.n if n is None else n
        if self.config.seed is not None:
            torch.manual_seed(self.config.seed)
        todo = missing_indices(problems, n, existing)
        prompts = {p.key: self.render(self.config.prompt.messages(p.problem)) for p, _ in todo}
        units = [(problem, index) for problem, indices in todo for index in indices]
        size = self.config.concurrency
        for start in range(0, len(units), size):
            chunk = units[start : start + size]
            sampled = self._sample([prompts[problem.key] for problem, _ in chunk])
            for (problem, index), result in zip(chunk, sampled, strict=True):
                solution = GeneratedSolution.from_text(
                    problem.key,
                    index,
                    result.text,
                    self.config.split_rule,
                    finish_reason=result.finish_reason,
                    completion_tokens=result.tokens,
                )
                self.stats.add(solutions=1, without_answer=not solution.has_answer)
                yield solution
            if progress is not None:
                progress(start + len(chunk), len(units))

    def complete(self, messages: list[Message], n: int) -> list[str]:
        """``n`` sampled completions of ``messages``, in batches of ``concurrency``."""
        prompt = self.render(messages)
        size = self.config.concurrency
        texts: list[str] = []
        for start in range(0, n, size):
            texts.extend(s.text for s in self._sample([prompt] * min(size, n - start)))
        return texts
