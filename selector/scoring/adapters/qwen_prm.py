"""Qwen2.5-Math-PRM: chat prompt, steps joined by ``<extra_0>``, a 2-class head.

Follows the model card of Qwen/Qwen2.5-Math-PRM-7B: system "Please reason step by step, and
put your final answer within \\boxed{}.", user = the problem, assistant = the steps joined by
``<extra_0>`` with a trailing ``<extra_0>``, rendered with the tokenizer's chat template; the
step score is softmax over the 2 classes, P(class 1), at each ``<extra_0>``.
"""

from __future__ import annotations

import re

import torch

from selector.scoring.adapters.base import check_token_id, register_adapter
from selector.scoring.adapters.text_template import TextTemplateAdapter
from selector.scoring.checkpoint import CheckpointError

# ChatML, the format of Qwen chat models; used when a qwen-prm tokenizer ships no chat template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
)


@register_adapter
class QwenPRMAdapter(TextTemplateAdapter):
    """Qwen2.5-Math-PRM style: chat prompt, steps joined by ``<extra_0>``, 2-class head.

    Step score = P(class 1) at each ``<extra_0>``. The published checkpoint
    (``Qwen2ForProcessRewardModel``: ``model.*`` + ``score.0/2.*``) loads into
    :class:`~selector.scoring.heads.Qwen2ProcessRewardModel`, never with its own remote code; a
    checkpoint with a single-Linear head (``score.weight``, what transformers'
    ``Qwen2ForTokenClassification`` saves) loads with ``AutoModelForTokenClassification``.
    """

    name = "qwen-prm"
    auto_class = "AutoModelForTokenClassification"
    add_special_tokens = False  # the chat template already holds every special token

    @classmethod
    def model_class(cls, weight_names):
        if "score.weight" in weight_names:
            return super().model_class(weight_names)
        from selector.scoring.heads import Qwen2ProcessRewardModel

        return Qwen2ProcessRewardModel

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        super().__init__(model, tokenizer, config, device=device, path=path)
        n_labels = getattr(model, "num_labels", model.config.num_labels)
        if n_labels != 2:
            raise CheckpointError(f"qwen-prm needs 2 labels, the model has {n_labels}")
        self.separator = config.separator
        self.separator_id = check_token_id(tokenizer, config.separator, "step separator")
        specials = {self.separator, *tokenizer.all_special_tokens}
        specials |= {str(t) for t in tokenizer.added_tokens_decoder.values() if t.special}
        pattern = "|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True) if t)
        self._special_re = re.compile(pattern)
        self._prefix, self._suffix = self._template_parts()

    def _template_parts(self) -> tuple[tuple[str, str], str]:
        marker_q, marker_a = "\ue000", "\ue001"  # private-use characters: never in real text
        messages = [
            {"role": "system", "content": self.config.system_prompt},
            {"role": "user", "content": marker_q},
            {"role": "assistant", "content": marker_a},
        ]
        template = getattr(self.tokenizer, "chat_template", None) or CHATML_TEMPLATE
        text = self.tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=False
        )
        if text.count(marker_q) != 1 or text.count(marker_a) != 1:
            raise CheckpointError("the chat template does not render the messages verbatim")
        before_a, after_a = text.split(marker_a)
        before_q, after_q = before_a.split(marker_q)
        return (before_q, after_q), after_a

    def _clean(self, text: str) -> str:
        # Special-token strings inside user text would inject fake separators/turns.
        return self._special_re.sub("", text)

    def render(self, problem, steps):
        head = self._prefix[0] + problem + self._prefix[1]
        parts = [head]
        spans: list[tuple[int, int]] = []
        pos = len(head)
        for step in steps:
            parts.append(step)
            pos += len(step)
            parts.append(self.separator)
            spans.append((pos, pos + len(self.separator)))
            pos += len(self.separator)
        parts.append(self._suffix)
        return "".join(parts), spans

    def _fit(self, ids, positions, n_steps, cut):
        for p in positions:
            if ids[p] != self.separator_id:
                raise RuntimeError("step separator was not tokenized as a single token")
        return super()._fit(ids, positions, n_steps, cut)

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        return self.logits_at(input_ids, attention_mask, rows, cols).float().softmax(dim=-1)

    def logits_at(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        """The 2 class logits at ``(rows, cols)`` (with gradients when not in inference mode)."""
        if hasattr(self.model, "logits_at"):
            return self.model.logits_at(input_ids, attention_mask, rows, cols)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **self._forward_kwargs)
        return out.logits[rows, cols]
