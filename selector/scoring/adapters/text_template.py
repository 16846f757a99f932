"""Adapters whose input is a rendered text with a marker after every step (causal PRMs)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from selector.scoring.adapters.base import PRMAdapter
from selector.scoring.checkpoint import CheckpointError
from selector.scoring.inputs import EncodedSample, PRMInput, as_input


def _span_positions(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]):
    """Index of the last token overlapping each character span (spans sorted, disjoint)."""
    positions: list[int] = []
    j, n = 0, len(offsets)
    for start, end in spans:
        last = -1
        while j < n:
            a, b = offsets[j]
            if a >= end and b > a:
                break
            if b > a and b > start:
                last = j
            j += 1
        if last < 0:
            raise RuntimeError(f"no token covers characters {start}:{end} of the PRM input")
        positions.append(last)
        j = last + 1
    return positions


class TextTemplateAdapter(PRMAdapter):
    """Adapters whose input is a rendered text with a marker string after every step.

    The whole text is tokenized at once (as the model's reference usage does) and marker
    positions are found through the tokenizer's character offsets.
    """

    # Whether the tokenizer adds its own special tokens (BOS …) around the rendered text.
    add_special_tokens: ClassVar[bool] = True

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        super().__init__(model, tokenizer, config, device=device, path=path)
        if not getattr(tokenizer, "is_fast", False):
            raise CheckpointError(
                f"the {self.name} adapter needs a fast tokenizer (tokenizer.json) for offsets"
            )

    @abstractmethod
    def render(self, problem: str, steps: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
        """The model input text and the character span of the marker after each step."""

    def _clean(self, text: str) -> str:
        return text

    def _tokenize(self, texts: list[str], special: bool) -> tuple[list[list[int]], list]:
        enc = self.tokenizer(
            texts, add_special_tokens=special, return_offsets_mapping=True, verbose=False
        )
        return enc["input_ids"], enc["offset_mapping"]

    def _cut_text(self, text: str, n_tokens: int) -> str:
        """The prefix of ``text`` covered by its first ``n_tokens`` tokens."""
        if n_tokens <= 0:
            return ""
        _, offsets = self._tokenize([text], False)
        offsets = offsets[0]
        if n_tokens >= len(offsets):
            return text
        return text[: offsets[n_tokens - 1][1]]

    def _fit(self, ids: list[int], positions: list[int], n_steps: int, cut: bool):
        if len(ids) <= self.max_length:
            return EncodedSample(ids, positions, n_steps, cut)
        keep = [p for p in positions if p < self.max_length]
        if not keep:
            return None
        # Causal models: dropping everything after a marker leaves the kept predictions as is.
        return EncodedSample(ids[: keep[-1] + 1], keep, n_steps, True)

    def _encode_overflowing(self, problem: str, steps: Sequence[str]) -> EncodedSample:
        """Slow path for a first step that does not fit: keep its head, score only it."""
        step = steps[0]
        n_step = len(self._tokenize([step], False)[0][0])
        for _ in range(8):
            text, spans = self.render(problem, [step])
            ids, offsets = self._tokenize([text], self.add_special_tokens)
            positions = _span_positions(offsets[0], spans)
            if positions[0] < self.max_length:
                return EncodedSample(ids[0][: positions[0] + 1], positions, len(steps), True)
            n_step = max(0, n_step - (positions[0] + 1 - self.max_length) - 1)
            step = self._cut_text(steps[0], n_step)
        raise ValueError(
            f"cannot fit one step into max_length={self.max_length} even with the problem cut "
            f"to {self.max_problem_tokens} tokens"
        )

    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        inputs = [as_input(s) for s in samples]
        for s in inputs:
            if not s.steps:
                raise ValueError("a sample to score needs at least one step")
        problems = list(dict.fromkeys(self._clean(s.problem) for s in inputs))
        problem_ids, problem_offsets = self._tokenize(problems, False) if problems else ([], [])
        cut: dict[str, tuple[str, bool]] = {}
        for text, ids, offs in zip(problems, problem_ids, problem_offsets, strict=True):
            if len(ids) > self.max_problem_tokens:
                end = offs[self.max_problem_tokens - 1][1] if self.max_problem_tokens > 0 else 0
                cut[text] = (text[:end], True)
            else:
                cut[text] = (text, False)
        prepared = []
        for s in inputs:
            problem, was_cut = cut[self._clean(s.problem)]
            steps = [self._clean(step) for step in s.steps]
            prepared.append((problem, steps, was_cut))
        rendered = [self.render(p, st) for p, st, _ in prepared]
        all_ids, all_offsets = self._tokenize([t for t, _ in rendered], self.add_special_tokens)
        out: list[EncodedSample] = []
        for (problem, steps, was_cut), (_, spans), ids, offs in zip(
            prepared, rendered, all_ids, all_offsets, strict=True
        ):
            enc = self._fit(list(ids), _span_positions(offs, spans), len(steps), was_cut)
            out.append(enc if enc is not None else self._encode_overflowing(problem, steps))
        return out
