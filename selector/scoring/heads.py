"""The heads of published PRMs, defined here on top of transformers' ``Qwen2Model``.

Qwen2.5-Math-PRM and Skywork-o1-Open-PRM ship their heads as remote code (``auto_map``), which
Stepwise never runs. Their weights are plain tensors, though: the base model under ``model.``
plus a small head, so these classes, with the same module names, load them strictly with
``from_pretrained`` (a missing weight is reported, not initialised at random).

Both compute the head only at the positions that are read (``logits_at``): a 7B model's
``h × h`` projection over every token would be wasted work.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Qwen2Config, Qwen2Model, Qwen2PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput


class _Qwen2WithHead(Qwen2PreTrainedModel):
    config_class = Qwen2Config
    base_model_prefix = "model"

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed_tokens = value

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits_at(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        rows: torch.Tensor,
        cols: torch.Tensor,
    ) -> torch.Tensor:
        """The head's output at tokens ``(rows[n], cols[n])`` only."""
        return self.head(self.hidden(input_ids, attention_mask)[rows, cols])

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        return TokenClassifierOutput(logits=self.head(self.hidden(input_ids, attention_mask)))


class Qwen2ProcessRewardModel(_Qwen2WithHead):
    """Qwen2.5-Math-PRM: ``score = Linear(h, h) → ReLU → Linear(h, 2)`` on every token.

    Weight names as published: ``model.*`` (``Qwen2Model``), ``score.0.*``, ``score.2.*``.
    """

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__(config)
        self.num_labels = 2
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))
        self.post_init()

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.score(hidden)


class ValueHead(nn.Module):
    """A scalar per token (``summary``); the published head's dropout is off at inference."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden.to(self.summary.weight.dtype))


class Qwen2PrmValueModel(_Qwen2WithHead):
    """Skywork-o1-Open-PRM (``Qwen2ForPrmModel``): ``v_head.summary = Linear(h, 1)``.

    Weight names as published: ``model.*`` (the causal LM's ``Qwen2Model``),
    ``v_head.summary.weight``, ``v_head.summary.bias``; the LM head (``lm_head.weight``) is not
    used for rewards and is skipped. ``logits_at`` returns the value logit ``[N, 1]``; the step
    reward is its sigmoid.
    """

    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__(config)
        self.num_labels = 1
        self.model = Qwen2Model(config)
        self.v_head = ValueHead(config.hidden_size)
        self.post_init()

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.v_head(hidden)
