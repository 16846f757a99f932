"""PRM adapters, batched scoring and the bootstrap model (plain Python + torch; no Django).

Modules: ``formulas`` (step and solution scores), ``inputs`` (what is scored), ``adapters/``
(one module per kind of PRM), ``heads`` (published PRM heads on ``Qwen2Model``),
``inspection`` (registration check from the files, no torch), ``loading`` (checkpoint →
adapter, per-process cache),
``batching`` (token-budget batches), ``checkpoint`` (``stepwise_prm.json``, saving), ``device``,
``bootstrap`` (a small PRM from scratch).

Formulas (:mod:`selector.scoring.formulas`, importable without torch)
    Step score = P(step is not negative): 1 − P(negative) = P(neutral) + P(positive) for
    3-class PRMs (``neutral_is_positive=False``: P(positive)); P(correct) for 2-class PRMs.
    Solution score = product of the scored steps' scores (``aggregation="min"``: their min).

Usage
    >>> adapter = get_adapter("/models/prm-gen3")          # cached per process, kept warm
    >>> scores = adapter.score([(problem, steps), ...])    # list[SampleScore], input order
    >>> scores, stats = adapter.score_with_stats(samples, token_budget=32768)

Adapters (``stepwise_prm.json`` ``"adapter"`` field)
    ``token-classification``  native Stepwise PRM (below).
    ``qwen-prm``  Qwen2.5-Math-PRM style: the input is the chat prompt
        ``system: <system_prompt> / user: <problem> / assistant: step_1<extra_0>step_2<extra_0>…``
        rendered with the tokenizer's chat template (ChatML when it has none); step score =
        P(class 1) at each ``<extra_0>``, whose id comes from the model's own tokenizer. The
        published checkpoint (``Qwen2ForProcessRewardModel``, ``score.0/2.*``) loads into
        :class:`selector.scoring.heads.Qwen2ProcessRewardModel` (its remote code is never run);
        a single-Linear ``score.weight`` head loads as ``Qwen2ForTokenClassification``.
    ``skywork-prm``  Skywork-o1-Open-PRM (``Qwen2ForPrmModel``): ``bos + problem + "\\n"``,
        then each step followed by the ``"\\n"`` token; step score = sigmoid of the value head
        (``v_head.summary``) at that token (see :mod:`selector.scoring.adapters.skywork_prm`).
    ``tag-token``  Math-Shepherd style causal LM: input
        ``"<problem> Step 1: <step_1> ки\\nStep 2: <step_2> ки…"``; at each tag's (last) token
        the LM's logits for the good (``+``) and bad (``-``) tokens are softmaxed; step score =
        P(good). Tag, good, bad and ``step_template`` come from the JSON.

Native checkpoint format (what ``bootstrap`` and PRM training write; ``load_adapter`` reads)
    A directory holding::

        config.json              transformers config: a ...ForTokenClassification, num_labels=3
        model.safetensors        the weights (sharded safetensors + index also accepted)
        tokenizer.json, tokenizer_config.json   a fast tokenizer; the separator is a special token
        stepwise_prm.json        Stepwise's own settings (schema below)

    ``stepwise_prm.json``::

        {"adapter": "token-classification",   # registry key of the adapter
         "format_version": 1,
         "labels": ["negative", "neutral", "positive"],  # class index order: 0=−1, 1=0, 2=+1
         "separator": "[STEP]",               # token appended after every step
         "max_length": 512,                   # longest input, all tokens included
         "max_problem_tokens": null,          # problem cap; null = max_length // 2
         "base_model": "bootstrap"}           # provenance only
        (qwen-prm also reads "system_prompt"; tag-token "tag", "good", "bad", "step_template")

    Input ids of one (problem, steps) sample, built by :func:`encode_native_many` (training
    must use it too, so training and scoring see the same tokens)::

        [CLS] <problem> [SEP] <step_1> [STEP] <step_2> [STEP] … <step_n> [STEP]

    ``[CLS]``/``[SEP]`` are the tokenizer's cls/sep tokens and are left out when it has none;
    the problem and each step are tokenized on their own without special tokens, and special
    token strings inside the text are tokenized as plain text. The prediction for step k is
    the logits at its ``[STEP]`` token; training puts step k's label (0/1/2) there and -100
    elsewhere.

Truncation policy (all adapters)
    1. The problem is kept whole up to ``max_problem_tokens`` tokens (default
       ``max_length // 2``); a longer problem keeps its first ``max_problem_tokens`` tokens.
    2. Then whole steps, in order, while the input (separators, template and special tokens
       included) stays within ``max_length``. The first step that does not fit and every step
       after it are not scored.
    3. If not even the first step fits, its head (as many tokens as fit) is kept and scored,
       so every sample gets a score.
    The solution score aggregates the scored steps only; ``SampleScore.truncated`` is True
    when anything was cut (problem or steps) and ``n_scored_steps`` says how many steps were
    scored. For the causal adapters (qwen-prm, tag-token) rule 2 is applied by cutting the
    token sequence after the last fitting marker, so the kept steps' scores are exactly those
    of the untruncated input. A sample with no steps is an error.

Loading
    ``load_adapter(path)`` reads local files only; ``trust_remote_code=False`` always
    (``auto_map`` entries are ignored with a warning); ``model.safetensors`` is preferred and
    ``pytorch_model.bin`` is used only when there is no safetensors file (with a warning);
    weights that leave parameters of the model class uninitialised are refused.
"""

from __future__ import annotations

from typing import Any

from selector.scoring.formulas import (
    AGGREGATIONS,
    Aggregation,
    SampleScore,
    aggregate,
    sample_score,
    step_scores_from_probs,
)

# Names that need torch are imported on first use, so importing the formulas stays light.
_LAZY = {
    "PRMInput": "selector.scoring.inputs",
    "EncodedSample": "selector.scoring.inputs",
    "PRMAdapter": "selector.scoring.adapters",
    "ADAPTERS": "selector.scoring.adapters",
    "encode_native_many": "selector.scoring.adapters",
    "register_adapter": "selector.scoring.adapters",
    "load_adapter": "selector.scoring.loading",
    "inspect_checkpoint": "selector.scoring.inspection",
    "CheckpointInfo": "selector.scoring.inspection",
    "get_adapter": "selector.scoring.loading",
    "clear_adapter_cache": "selector.scoring.loading",
    "ScoringStats": "selector.scoring.batching",
    "plan_batches": "selector.scoring.batching",
    "resolve_device": "selector.scoring.device",
    "build_bootstrap_model": "selector.scoring.bootstrap",
    "PRMConfig": "selector.scoring.checkpoint",
    "CheckpointError": "selector.scoring.checkpoint",
    "PRM_CONFIG_NAME": "selector.scoring.checkpoint",
    "read_prm_config": "selector.scoring.checkpoint",
    "write_prm_config": "selector.scoring.checkpoint",
    "save_native_checkpoint": "selector.scoring.checkpoint",
    "add_separator_token": "selector.scoring.checkpoint",
}

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "SampleScore",
    "aggregate",
    "sample_score",
    "step_scores_from_probs",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'selector.scoring' has no attribute {name!r}")
