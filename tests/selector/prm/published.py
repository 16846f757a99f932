"""Tiny checkpoints in the exact layout of published PRMs, and reference forwards in plain torch.

The builders write what a download holds: ``config.json`` naming the published architecture
with an ``auto_map`` to remote code (a ``.py`` beside it that raises if it is ever imported),
weights under the published names in sharded safetensors with an index, and a byte-level BPE
tokenizer with the model's special tokens and chat template. The reference forwards compute
Qwen2 (RMSNorm, rotary attention with grouped KV heads and q/k/v biases, SwiGLU) and the heads
directly from those tensors, and encode inputs the way the model card / recipe does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2Model,
)

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
CORPUS = [
    "What is one plus two? We add one and two. The answer is 3.",
    "Let x = 2 + 3 so x = 5.\nThen 2x = 10.\nThe answer is \\boxed{10}.",
    "Compute 7 * 6. Seven times six is 42. So the answer is 42.",
    "system user assistant Please reason step by step, and put your final answer within",
]
# Qwen's chat template, cut down to what the PRM uses (system / user / assistant turns).
QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
REMOTE_CODE = "raise RuntimeError('remote code was imported: Stepwise must never run it')\n"


def bpe_tokenizer(special: list[str], **named: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (Qwen2's kind) trained on a few sentences."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, extra_special_tokens=special, **named)


def tiny_qwen2_config(vocab_size: int, **extra) -> dict:
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        **extra,
    )
    return config.to_dict()


def write_sharded(path: Path, tensors: dict[str, torch.Tensor], n_shards: int = 3) -> None:
    """Safetensors shards plus ``model.safetensors.index.json``, as the hub publishes them."""
    names = sorted(tensors)
    weight_map = {}
    for i in range(n_shards):
        shard = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {n: tensors[n].contiguous() for n in names[i::n_shards]}
        save_file(part, path / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _write_config(path: Path, config: dict) -> None:
    (path / "config.json").write_text(json.dumps(config, indent=2))


def _base_weights(config: dict, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    base = Qwen2Model(Qwen2Config(**config))
    with torch.no_grad():
        for name, p in base.named_parameters():
            if "norm" in name:  # non-trivial norms, so a forgotten norm weight would show
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    return {f"model.{k}": v.detach().clone() for k, v in base.state_dict().items()}


def qwen_prm_checkpoint(path: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """Qwen2.5-Math-PRM as published, tiny; ``drop`` leaves those weights out."""
    path.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"]
    tok = bpe_tokenizer(special, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = QWEN_CHAT_TEMPLATE
    tok.save_pretrained(path)
    config = tiny_qwen2_config(len(tok))
    config.update(
        architectures=["Qwen2ForProcessRewardModel"],
        auto_map={
            "AutoConfig": "configuration_qwen2_rm.Qwen2RMConfig",
            "AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel",
        },
        model_type="qwen2",
    )
    _write_config(path, config)
    for name in ("configuration_qwen2_rm.py", "modeling_qwen2_rm.py"):
        (path / name).write_text(REMOTE_CODE)
    tensors = _base_weights(config, seed=3)
    h = config["hidden_size"]
    g = torch.Generator().manual_seed(4)
    tensors["score.0.weight"] = torch.randn(h, h, generator=g) / math.sqrt(h)
    tensors["score.0.bias"] = 0.1 * torch.randn(h, generator=g)
    tensors["score.2.weight"] = torch.randn(2, h, generator=g)
    tensors["score.2.bias"] = torch.tensor([0.2, -0.1])
    write_sharded(path, {k: v for k, v in tensors.items() if k not in drop})
    return path


def skywork_prm_checkpoint(path: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """Skywork-o1-Open-PRM-Qwen-2.5 as published, tiny (causal LM weights + ``v_head``)."""
    path.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = bpe_tokenizer(
        special, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tok.chat_template = QWEN_CHAT_TEMPLATE
    tok.save_pretrained(path)
    config = tiny_qwen2_config(len(tok))
    config.update(
        architectures=["Qwen2ForPrmModel"],
        auto_map={"AutoModel": "modeling_prm.Qwen2ForPrmModel"},
        model_type="qwen2",
    )
    _write_config(path, config)
    (path / "modeling_prm.py").write_text(REMOTE_CODE)
    tensors = _base_weights(config, seed=5)
    h = config["hidden_size"]
    g = torch.Generator().manual_seed(6)
    tensors["lm_head.weight"] = torch.randn(config["vocab_size"], h, generator=g)
    tensors["v_head.summary.weight"] = torch.randn(1, h, generator=g)
    tensors["v_head.summary.bias"] = torch.tensor([0.3])
    write_sharded(path, {k: v for k, v in tensors.items() if k not in drop})
    return path


# --- reference forwards


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return {k: v.double() for k, v in tensors.items()}


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def qwen2_hidden(w: dict[str, torch.Tensor], config: dict, ids: list[int]) -> torch.Tensor:
    """Qwen2's last hidden state (after the final norm) for one sequence, in float64."""
    h, n_heads = config["hidden_size"], config["num_attention_heads"]
    n_kv, eps = config["num_key_value_heads"], config["rms_norm_eps"]
    d = h // n_heads
    theta = (config.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    t = len(ids)
    inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.outer(torch.arange(t, dtype=torch.float64), inv)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rotate(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], -1)

    x = w["model.embed_tokens.weight"][ids]
    causal = torch.full((t, t), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        y = _rms(x, w[p + "input_layernorm.weight"], eps)
        q = y @ w[p + "self_attn.q_proj.weight"].T + w[p + "self_attn.q_proj.bias"]
        k = y @ w[p + "self_attn.k_proj.weight"].T + w[p + "self_attn.k_proj.bias"]
        v = y @ w[p + "self_attn.v_proj.weight"].T + w[p + "self_attn.v_proj.bias"]
        q = q.view(t, n_heads, d).transpose(0, 1)
        k = k.view(t, n_kv, d).transpose(0, 1).repeat_interleave(n_heads // n_kv, 0)
        v = v.view(t, n_kv, d).transpose(0, 1).repeat_interleave(n_heads // n_kv, 0)
        q, k = q * cos + rotate(q) * sin, k * cos + rotate(k) * sin
        attn = (q @ k.transpose(1, 2) / math.sqrt(d) + causal).softmax(-1)
        o = (attn @ v).transpose(0, 1).reshape(t, h)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        y = _rms(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = torch.nn.functional.silu(y @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (gate * (y @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return _rms(x, w["model.norm.weight"], eps)


def qwen_prm_reference(path: Path, tokenizer, problem: str, steps: list[str]) -> list[float]:
    """Step rewards exactly as the Qwen2.5-Math-PRM model card computes them."""
    config = json.loads((path / "config.json").read_text())
    w = read_weights(path)
    messages = [
        {"role": "system", "content": QWEN_SYSTEM},
        {"role": "user", "content": problem},
        {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = tokenizer.encode(text)
    sep = tokenizer.encode("<extra_0>")[0]
    hidden = qwen2_hidden(w, config, ids)
    at = hidden[[i for i, t in enumerate(ids) if t == sep]]
    z = torch.relu(at @ w["score.0.weight"].T + w["score.0.bias"])
    logits = z @ w["score.2.weight"].T + w["score.2.bias"]
    return logits.softmax(-1)[:, 1].tolist()


def skywork_prm_reference(path: Path, tokenizer, problem: str, steps: list[str]) -> list[float]:
    """Step rewards as skywork-o1-prm-inference's prepare_input + PRM_MODEL compute them."""
    config = json.loads((path / "config.json").read_text())
    w = read_weights(path)
    ids = tokenizer.encode(tokenizer.bos_token + problem + "\n")
    step_id = tokenizer.encode("\n")[-1]
    flags = [0] * len(ids)
    for step in "\n".join(steps).split("\n"):
        piece = [*tokenizer.encode(step), step_id]
        ids += piece
        flags += [0] * (len(piece) - 1) + [1]
    hidden = qwen2_hidden(w, config, ids)
    value = hidden @ w["v_head.summary.weight"].T + w["v_head.summary.bias"]
    return [float(torch.sigmoid(value[i, 0])) for i, f in enumerate(flags) if f]


def tiny_bert_base(path):
    """A small "pretrained" encoder saved as a hub BERT directory (BertModel, no head)."""
    tok = bpe_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]"], pad_token="[PAD]")
    tok.cls_token, tok.sep_token, tok.unk_token = "[CLS]", "[SEP]", "[UNK]"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def tiny_decoder_base(path):
    """A small causal LM saved as a hub Qwen2 directory."""
    tok = bpe_tokenizer(["<|endoftext|>"], eos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
