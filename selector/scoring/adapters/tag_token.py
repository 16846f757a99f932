"""Math-Shepherd style causal LM: a tag after every step, P(good) against P(bad) at the tag."""

from __future__ import annotations

from dataclasses import replace

import torch

from selector.scoring.adapters.base import check_token_id, register_adapter
from selector.scoring.adapters.text_template import TextTemplateAdapter
from selector.scoring.formulas import LABELS_2


@register_adapter
class TagTokenAdapter(TextTemplateAdapter):
    """Math-Shepherd style causal LM: a tag after every step, P(good) vs bad at the tag.

    Input: ``f"{problem} {step_1_text} {tag}\\n{step_2_text} {tag}…"`` with each step text
    rendered through ``step_template`` (default ``"Step {i}: {step}"``, Math-Shepherd's
    format). At the tag's (last) token the LM logits restricted to the good and bad tokens are
    softmaxed; step score = P(good).
    """

    name = "tag-token"
    auto_class = "AutoModelForCausalLM"
    add_special_tokens = True

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        config = replace(config, labels=list(LABELS_2))
        super().__init__(model, tokenizer, config, device=device, path=path)
        self.tag = config.tag
        good, bad = self._class_ids(config.good, config.bad)
        # Column order [bad, good] matches labels (negative, positive).
        self.class_token_ids = torch.tensor([bad, good], dtype=torch.long)
        self._base = getattr(model, model.base_model_prefix, None)
        self._head = model.get_output_embeddings()

    def _class_ids(self, good: str, bad: str) -> tuple[int, int]:
        # Math-Shepherd encodes "+ -" together, so each token carries its usual leading space.
        pair = self.tokenizer.encode(f"{good} {bad}", add_special_tokens=False)
        if len(pair) == 2:
            return int(pair[0]), int(pair[1])
        return (
            check_token_id(self.tokenizer, good, "good token"),
            check_token_id(self.tokenizer, bad, "bad token"),
        )

    def render(self, problem, steps):
        parts = [problem, " "]
        pos = len(problem) + 1
        spans: list[tuple[int, int]] = []
        for i, step in enumerate(steps, start=1):
            if i > 1:
                parts.append("\n")
                pos += 1
            body = self.config.step_template.format(i=i, step=step.strip()) + " "
            parts.append(body)
            pos += len(body)
            parts.append(self.tag)
            spans.append((pos, pos + len(self.tag)))
            pos += len(self.tag)
        return "".join(parts), spans

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        ids = self.class_token_ids.to(input_ids.device)
        if self._base is not None and self._head is not None:
            # Project only the tag positions onto the two class tokens, not the whole vocab.
            hidden = self._base(
                input_ids=input_ids, attention_mask=attention_mask, **self._forward_kwargs
            ).last_hidden_state[rows, cols]
            weight = self._head.weight[ids].float()
            logits = hidden.float() @ weight.T
            if getattr(self._head, "bias", None) is not None:
                logits = logits + self._head.bias[ids].float()
        else:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            logits = out.logits[rows, cols][:, ids].float()
        return logits.softmax(dim=-1)
