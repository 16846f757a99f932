"""Training starts from pretrained bases and published PRMs, and lowers validation loss."""

from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402

from selector.scoring import load_adapter  # noqa: E402
from selector.training import (  # noqa: E402
    TRAINING_RECORD,
    TrainingConfig,
    TrainingExample,
    default_base,
    train_prm,
)
from tests.selector.prm.published import (  # noqa: E402
    qwen_prm_checkpoint,
    skywork_prm_checkpoint,
    tiny_bert_base,
    tiny_decoder_base,
)

WORDS = [
    "add",
    "the",
    "two",
    "numbers",
    "then",
    "multiply",
    "by",
    "three",
    "and",
    "divide",
    "so",
    "we",
    "get",
]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def learnable(n_problems: int, seed: int = 0) -> list[TrainingExample]:
    """A step ending in "wrong" is −1, "maybe" 0, anything else +1."""
    rng = random.Random(seed)
    out = []
    for p in range(n_problems):
        problem = f"Problem {p}: compute {rng.randint(1, 99)} plus {rng.randint(1, 99)}."
        for _ in range(2):
            ratings = [rng.choice([1, 1, 0, -1]) for _ in range(rng.randint(1, 3))]
            steps = []
            for r in ratings:
                tail = {-1: ["wrong"], 0: ["maybe"], 1: []}[r]
                steps.append(" ".join(rng.sample(WORDS, 3) + tail))
            out.append(TrainingExample(problem, steps, ratings, problem_id=str(p)))
    return out


def train(examples, base, out, **overrides):
    config = {
        "out_dir": out,
        "base": base,
        "val_problems": 0.25,
        "epochs": 3,
        "batch_tokens": 1024,
        "seed": 0,
        "device": "cpu",
        **overrides,
    }
    return train_prm(examples, TrainingConfig(**config))


def test_fine_tuning_a_pretrained_encoder_lowers_validation_loss(tmp_path):
    examples = learnable(30)
    base = default_base() or tiny_bert_base(tmp_path / "base")
    result = train(examples, base, tmp_path / "tuned", epochs=3, lr=3e-4, batch_tokens=384)
    assert result.final_val_loss < result.initial_val_loss
    adapter = load_adapter(result.out_dir, device="cpu")
    assert adapter.name == "token-classification"
    assert adapter.tokenizer.convert_tokens_to_ids("[STEP]") != adapter.tokenizer.unk_token_id
    record = json.loads((result.out_dir / TRAINING_RECORD).read_text())
    assert record["base"] == str(base) and record["hyperparameters"]["model"] == "native"


def test_fine_tuning_a_decoder_base_writes_a_native_checkpoint(tmp_path):
    examples = learnable(16)
    base = tiny_decoder_base(tmp_path / "base")
    result = train(examples, base, tmp_path / "tuned", lr=3e-3)
    assert result.final_val_loss < result.initial_val_loss
    adapter = load_adapter(result.out_dir, device="cpu")
    assert (adapter.name, adapter.labels) == (
        "token-classification",
        ("negative", "neutral", "positive"),
    )


@pytest.mark.parametrize(
    ("build", "adapter_name", "head"),
    [
        (qwen_prm_checkpoint, "qwen-prm", "score.2.weight"),
        (skywork_prm_checkpoint, "skywork-prm", "v_head.summary.weight"),
    ],
)
def test_continuing_a_published_prm_keeps_its_layout(tmp_path, build, adapter_name, head):
    examples = learnable(16)
    base = build(tmp_path / "published")
    result = train(examples, base, tmp_path / "tuned", lr=3e-3, neutral_is_positive=False)
    assert result.final_val_loss < result.initial_val_loss
    adapter = load_adapter(result.out_dir, device="cpu")
    assert adapter.name == adapter_name
    with safe_open(result.out_dir / "model.safetensors", "pt") as f:
        assert head in set(f.keys())
    scores = adapter.score([("Problem 0: compute", ["add the two wrong"])])
    assert 0 <= scores[0].score <= 1


def test_lora_trains_adapters_and_the_head_and_saves_merged_weights(tmp_path):
    pytest.importorskip("peft")
    examples = learnable(16)
    base = tiny_decoder_base(tmp_path / "base")
    result = train(examples, base, tmp_path / "tuned", lr=3e-3, lora_rank=4, epochs=4)
    assert result.final_val_loss < result.initial_val_loss
    record = json.loads((result.out_dir / TRAINING_RECORD).read_text())
    total = sum(p.numel() for p in load_adapter(result.out_dir, device="cpu").model.parameters())
    assert 0 < record["hyperparameters"]["trained_parameters"] < total / 2
    with safe_open(result.out_dir / "model.safetensors", "pt") as f:
        names = set(f.keys())
    assert not any("lora" in n or "base_layer" in n for n in names)
    # The merged checkpoint reproduces the validation loss measured on the LoRA model.
    again = train(examples, result.out_dir, tmp_path / "again", epochs=1, lr=1e-12)
    assert again.initial_val_loss == pytest.approx(result.final_val_loss, rel=1e-4)
