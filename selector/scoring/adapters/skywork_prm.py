"""Skywork-o1-Open-PRM: a scalar value head, sigmoid, read at the token that ends each step.

Follows the inference recipe published with the model, SkyworkAI/skywork-o1-prm-inference on
GitHub (``model_utils/io_utils.py: prepare_input``, ``model_utils/prm_model.py: PRM_MODEL``):

* input ids = ``encode(bos_token + problem + "\\n")``, then for every step ``encode(step)``
  followed by the id of the step token ``"\\n"`` (``encode("\\n")[-1]``); each piece is
  tokenized on its own, so a step's end is always exactly that one token;
* the reward of a step = ``sigmoid(v_head(last_hidden_state))`` at its step token, where
  ``v_head.summary`` is a ``Linear(h, 1)`` on top of the Qwen2 base model.

Stepwise's steps are given as a list, so a newline inside a step is kept as text and only the
appended step token is read. The tokenizer's BOS token is prepended when it has one (the
recipe relies on it; a tokenizer without one gets none, with a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import torch

from selector.scoring.adapters.base import PRMAdapter, register_adapter
from selector.scoring.adapters.token_classification import assemble_steps
from selector.scoring.checkpoint import CheckpointError
from selector.scoring.formulas import LABELS_2
from selector.scoring.inputs import EncodedSample, PRMInput, as_input

logger = logging.getLogger(__name__)

SKYWORK_STEP_TOKEN = "\n"


@register_adapter
class SkyworkPRMAdapter(PRMAdapter):
    """Skywork-o1-Open-PRM (``Qwen2ForPrmModel``): P(correct) = sigmoid(value) at each step end."""

    name = "skywork-prm"
    auto_class = "AutoModel"  # unused: model_class names the head defined in heads.py

    @classmethod
    def model_class(cls, weight_names):
        from selector.scoring.heads import Qwen2PrmValueModel

        return Qwen2PrmValueModel

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        config = replace(config, labels=list(LABELS_2))
        super().__init__(model, tokenizer, config, device=device, path=path)
        if not hasattr(model, "logits_at"):
            raise CheckpointError("skywork-prm needs the value-head model (Qwen2PrmValueModel)")
        self.step_token = config.separator
        ids = tokenizer.encode(self.step_token, add_special_tokens=False)
        if not ids:
            raise CheckpointError(f"the tokenizer encodes the step token {self.step_token!r} empty")
        self.step_token_id = int(ids[-1])
        self.bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        if not self.bos:
            logger.warning("%s: the tokenizer has no BOS token; the recipe prepends one", path)

    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        inputs = [as_input(s) for s in samples]
        for s in inputs:
            if not s.steps:
                raise ValueError("a sample to score needs at least one step")
        problems = list(dict.fromkeys(s.problem for s in inputs))
        pieces = [p + self.step_token for p in problems] + [t for s in inputs for t in s.steps]
        # User text is plain text: a special-token string in it must not become a BOS or turn.
        ids = self.tokenizer(
            pieces, add_special_tokens=False, split_special_tokens=True, verbose=False
        )["input_ids"]
        cap = max(1, min(self.max_problem_tokens, self.max_length - len(self.bos) - 1))
        prompt: dict[str, tuple[list[int], bool]] = {}
        for problem, p_ids in zip(problems, ids[: len(problems)], strict=True):
            if len(p_ids) > cap:  # keep the head of the problem, still ending in a newline
                prompt[problem] = ([*p_ids[: cap - 1], self.step_token_id], True)
            else:
                prompt[problem] = (list(p_ids), False)
        cursor = len(problems)
        out: list[EncodedSample] = []
        for s in inputs:
            p_ids, cut = prompt[s.problem]
            steps = ids[cursor : cursor + len(s.steps)]
            cursor += len(s.steps)
            tokens, positions, truncated = assemble_steps(
                self.bos + p_ids, steps, self.step_token_id, self.max_length
            )
            out.append(EncodedSample(tokens, positions, len(s.steps), truncated or cut))
        return out

    def logits_at(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        """The value logit ``[N, 1]`` at ``(rows, cols)`` (with gradients outside inference)."""
        return self.model.logits_at(input_ids, attention_mask, rows, cols)

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        p = self.logits_at(input_ids, attention_mask, rows, cols).float().sigmoid()
        return torch.cat([1 - p, p], dim=-1)  # labels (negative, positive)
