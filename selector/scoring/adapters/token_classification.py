"""The native Stepwise PRM: token classification, logits read at the step separators.

`encode_native_many` is also what training encodes with, so both see the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from selector.scoring.adapters.base import PRMAdapter, check_token_id, register_adapter
from selector.scoring.checkpoint import NATIVE_ADAPTER, PRM_CONFIG_NAME, CheckpointError
from selector.scoring.inputs import EncodedSample, PRMInput, SampleLike, as_input

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def assemble_steps(
    head: list[int], step_ids: Sequence[list[int]], sep_id: int, max_length: int
) -> tuple[list[int], list[int], bool]:
    """Append whole steps (each followed by ``sep_id``) to ``head`` while they fit."""
    ids = list(head)
    positions: list[int] = []
    truncated = False
    for k, step in enumerate(step_ids):
        room = max_length - len(ids)
        if len(step) + 1 <= room:
            ids.extend(step)
        elif k == 0 and room >= 1:
            # Keep the head of a first step that alone overflows so every sample gets a score.
            ids.extend(step[: room - 1])
            truncated = True
        else:
            truncated = True
            break
        ids.append(sep_id)
        positions.append(len(ids) - 1)
        if truncated:
            break
    return ids, positions, truncated


def encode_native_many(
    tokenizer: PreTrainedTokenizerBase,
    samples: Sequence[SampleLike],
    *,
    separator: str,
    max_length: int,
    max_problem_tokens: int | None = None,
) -> list[EncodedSample]:
    """Native (token-classification) encoding, shared by scoring and training.

    Layout: ``[CLS]? problem [SEP]? step_1 [STEP] step_2 [STEP] … step_n [STEP]`` where the
    optional tokens are the tokenizer's own cls/sep tokens when it has them, and the problem
    and each step are tokenized separately without special tokens, with special-token strings
    in the text tokenized as plain text (text cannot inject a separator).
    """
    inputs = [as_input(s) for s in samples]
    sep_id = check_token_id(tokenizer, separator, "separator")
    prefix = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []
    mid = (
        [tokenizer.sep_token_id]
        if tokenizer.sep_token_id is not None and tokenizer.sep_token_id != sep_id
        else []
    )
    cap = max_length // 2 if max_problem_tokens is None else max_problem_tokens
    # At least one token of room must remain for the first step's separator.
    cap = max(0, min(cap, max_length - len(prefix) - len(mid) - 1))

    problems = list(dict.fromkeys(s.problem for s in inputs))
    pieces = problems + [step for s in inputs for step in s.steps]
    ids = (
        tokenizer(pieces, add_special_tokens=False, split_special_tokens=True, verbose=False)[
            "input_ids"
        ]
        if pieces
        else []
    )
    problem_ids = dict(zip(problems, ids[: len(problems)], strict=True))
    cursor = len(problems)
    out: list[EncodedSample] = []
    for s in inputs:
        if not s.steps:
            raise ValueError("a sample to score needs at least one step")
        p = problem_ids[s.problem]
        head = prefix + p[:cap] + mid
        steps = ids[cursor : cursor + len(s.steps)]
        cursor += len(s.steps)
        tokens, positions, truncated = assemble_steps(head, steps, sep_id, max_length)
        out.append(EncodedSample(tokens, positions, len(s.steps), truncated or len(p) > cap))
    return out


@register_adapter
class TokenClassificationAdapter(PRMAdapter):
    """Native Stepwise PRM: token classification, logits read at the step separators."""

    name = NATIVE_ADAPTER
    auto_class = "AutoModelForTokenClassification"

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        super().__init__(model, tokenizer, config, device=device, path=path)
        if model.config.num_labels != len(self.labels):
            raise CheckpointError(
                f"{PRM_CONFIG_NAME} lists {len(self.labels)} labels but the model has "
                f"{model.config.num_labels}"
            )
        self.separator = config.separator
        self.separator_id = check_token_id(tokenizer, config.separator, "separator")

    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        return encode_native_many(
            self.tokenizer,
            samples,
            separator=self.separator,
            max_length=self.max_length,
            max_problem_tokens=self.max_problem_tokens,
        )

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **self._forward_kwargs)
        return out.logits[rows, cols].float().softmax(dim=-1)
