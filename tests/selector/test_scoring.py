"""PRM adapters, formulas, batching and bootstrap (selector.scoring), with tiny local models."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import DATA_DIR

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertForTokenClassification,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2ForTokenClassification,
)

from selector.scoring import (
    CheckpointError,
    PRMConfig,
    aggregate,
    build_bootstrap_model,
    clear_adapter_cache,
    get_adapter,
    load_adapter,
    plan_batches,
    save_native_checkpoint,
    step_scores_from_probs,
    write_prm_config,
)
from selector.scoring.adapters import TokenClassificationAdapter
from selector.scoring.bootstrap import texts_from_samples


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny models: one thread avoids OpenMP contention on small, busy CI machines.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DATA = DATA_DIR
WORDS_TEXT = """
what is one plus two three four five six seven so the answer we add get then
x y z = 1 2 3 4 5 6 7 8 9 0 + - * / ( ) . , : Step ки be careful system user assistant
"""
WORDS = WORDS_TEXT.split()


def wordlevel_tokenizer(
    vocab: list[str], special: list[str], **named: str
) -> PreTrainedTokenizerFast:
    """A whitespace word-level fast tokenizer whose ids are the positions in ``vocab``."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", extra_special_tokens=special, **named
    )


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


SAMPLES = [
    ("what is one plus two", ["one plus two = 3", "so the answer is 3"]),
    ("what is x + y", ["we add x + y", "then we get z", "so z", "the answer is z"]),
    ("what is 1 + 2 + 3", ["1 + 2 = 3", "3 + 3 = 6"]),
]


def varied_samples(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        problem = " ".join(rng.choices(WORDS[:20], k=rng.randint(2, 12)))
        steps = [
            " ".join(rng.choices(WORDS[:30], k=rng.randint(1, 9))) for _ in range(rng.randint(1, 6))
        ]
        out.append((problem, steps))
    return out


# --- formulas ---------------------------------------------------------------------------------


def test_product_formula_matches_prm800k_scored_sample():
    sample = json.loads((DATA / "scored_sample_example.json").read_text())
    probs = sample["rating_probs"]
    steps = step_scores_from_probs(probs)
    assert len(steps) == len(sample["steps"])
    expected = [p["1"] + p["0"] for p in probs]
    assert steps == pytest.approx(expected, abs=1e-15)
    assert aggregate(steps) == pytest.approx(sample["prm_score"], rel=1e-12)
    assert aggregate(steps) == pytest.approx(0.0915755, abs=1e-7)
    assert aggregate(steps, "min") == pytest.approx(min(expected), rel=1e-12)
    strict = step_scores_from_probs(probs, neutral_is_positive=False)
    assert strict == pytest.approx([p["1"] for p in probs], abs=1e-15)
    assert aggregate(strict) == pytest.approx(math.prod(p["1"] for p in probs), rel=1e-12)


def test_step_scores_from_rows_and_two_classes():
    rows = [[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]
    assert step_scores_from_probs(rows) == pytest.approx([0.8, 0.4])
    assert step_scores_from_probs(rows, neutral_is_positive=False) == pytest.approx([0.5, 0.3])
    two = step_scores_from_probs([[0.25, 0.75]], labels=("negative", "positive"))
    assert two == pytest.approx([0.75])
    assert step_scores_from_probs([{-1: 0.1, 0: 0.2, 1: 0.7}]) == pytest.approx([0.9])
    with pytest.raises(ValueError):
        aggregate([])
    with pytest.raises(ValueError):
        aggregate([0.5], "mean")  # type: ignore[arg-type]


def test_formulas_import_without_torch():
    # The web process uses the formulas; it must not pay for importing torch.
    code = (
        "import sys, selector.scoring as s; s.aggregate([0.5]); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo)


def test_plan_batches_respects_budget_and_covers_everything():
    rng = random.Random(1)
    lengths = [rng.randint(1, 300) for _ in range(200)]
    batches = plan_batches(lengths, token_budget=1000)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(200))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 1000
    assert plan_batches([5000, 10], 1000) == [[0], [1]]  # an oversize input runs alone
    assert all(len(b) <= 3 for b in plan_batches(lengths, 10**6, max_batch_size=3))


# --- tiny checkpoints -------------------------------------------------------------------------

NATIVE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[STEP]", *WORDS]


def native_checkpoint(path: Path, *, bias: list[float] | None = None, max_length: int = 128):
    tok = wordlevel_tokenizer(
        NATIVE_VOCAB, ["[STEP]"], pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(
        vocab_size=len(NATIVE_VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        num_labels=3,
    )
    torch.manual_seed(0)
    model = BertForTokenClassification(config).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    save_native_checkpoint(model, tok, path, max_length=max_length)
    return model, tok


QWEN_VOCAB = ["<|endoftext|>", "[UNK]", "<|im_start|>", "<|im_end|>", "x", "y", "z"]
QWEN_VOCAB += ["<extra_0>", *WORDS]  # <extra_0> gets id 7: not where added tokens usually go
QWEN_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}"
)


def qwen_checkpoint(path: Path, *, bias: list[float] | None = None, with_separator: bool = True):
    vocab = QWEN_VOCAB if with_separator else [w for w in QWEN_VOCAB if w != "<extra_0>"]
    special = ["<|im_start|>", "<|im_end|>"] + (["<extra_0>"] if with_separator else [])
    tok = wordlevel_tokenizer(vocab, special, eos_token="<|endoftext|>")
    tok.chat_template = QWEN_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        num_labels=2,
        pad_token_id=0,
    )
    torch.manual_seed(1)
    model = Qwen2ForTokenClassification(config).eval()
    if bias is not None:
        with torch.no_grad():
            model.score.weight.zero_()
            model.score.bias.copy_(torch.tensor(bias))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    write_prm_config(
        path,
        PRMConfig(
            adapter="qwen-prm",
            labels=["negative", "positive"],
            separator="<extra_0>",
            system_prompt="be careful",
            max_length=256,
        ),
    )
    return model, tok


def tag_checkpoint(path: Path, *, closed_form: tuple[float, float] | None = None):
    vocab = ["[PAD]", "[UNK]", *WORDS]
    tok = wordlevel_tokenizer(vocab, [], pad_token="[PAD]")
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=0,
    )
    torch.manual_seed(2)
    model = Qwen2ForCausalLM(config).eval()
    if closed_form is not None:
        good, bad = closed_form
        h = config.hidden_size
        tag, plus, minus = (vocab.index(t) for t in ("ки", "+", "-"))
        with torch.no_grad():
            # Layers add nothing to the residual stream: the hidden state at a token is the
            # RMS-normed embedding of that token.
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.embed_tokens.weight[tag] = 1.0  # RMSNorm(ones) = ones
            model.lm_head.weight[plus] = good / h
            model.lm_head.weight[minus] = bad / h
    model.save_pretrained(path)
    tok.save_pretrained(path)
    write_prm_config(
        path,
        PRMConfig(adapter="tag-token", labels=["negative", "positive"], max_length=256),
    )
    return model, tok


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


# --- token-classification (native) ------------------------------------------------------------


def test_native_input_layout(tmp_path):
    native_checkpoint(tmp_path)
    adapter = load_adapter(tmp_path, device="cpu")
    assert isinstance(adapter, TokenClassificationAdapter)
    tok = adapter.tokenizer
    problem, steps = SAMPLES[0]
    enc = adapter.encode(problem, steps)
    cls, sep, step = (NATIVE_VOCAB.index(t) for t in ("[CLS]", "[SEP]", "[STEP]"))
    expected = [cls, *ids_of(tok, problem), sep]
    positions = []
    for s in steps:
        expected += [*ids_of(tok, s), step]
        positions.append(len(expected) - 1)
    assert enc.input_ids == expected
    assert enc.positions == positions
    assert enc.n_steps == 2 and not enc.truncated
    # A separator string inside the text is plain text, not a separator.
    injected = adapter.encode("x [STEP] y", ["z"])
    assert injected.input_ids.count(step) == 1


def test_native_closed_form_probabilities(tmp_path):
    bias = [0.3, -1.2, 0.9]
    native_checkpoint(tmp_path, bias=bias)
    adapter = load_adapter(tmp_path, device="cpu")
    p_neg, p_neu, p_pos = softmax(bias)
    scores = adapter.score(SAMPLES)
    for (_, steps), s in zip(SAMPLES, scores, strict=True):
        assert s.n_scored_steps == len(steps) == len(s.step_scores)
        assert s.step_scores == pytest.approx([1 - p_neg] * len(steps), abs=1e-6)
        assert s.score == pytest.approx((1 - p_neg) ** len(steps), abs=1e-6)
        assert not s.truncated
    strict = adapter.score(SAMPLES, neutral_is_positive=False, aggregation="min")
    assert strict[1].step_scores == pytest.approx([p_pos] * 4, abs=1e-6)
    assert strict[1].score == pytest.approx(p_pos, abs=1e-6)
    assert p_neu > 0  # neutral mass is what separates the two settings


def test_native_matches_manual_forward(tmp_path):
    model, tok = native_checkpoint(tmp_path)
    adapter = load_adapter(tmp_path, device="cpu")
    scores = adapter.score(SAMPLES)
    sep_id = tok.convert_tokens_to_ids("[STEP]")
    for (problem, steps), got in zip(SAMPLES, scores, strict=True):
        ids = tok(problem, add_special_tokens=False)["input_ids"]
        text_ids = [tok.cls_token_id, *ids, tok.sep_token_id]
        for s in steps:
            text_ids += [*ids_of(tok, s), sep_id]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([text_ids])).logits[0]
        at = logits[torch.tensor(text_ids) == sep_id].softmax(-1)
        expected = (at[:, 1] + at[:, 2]).tolist()
        assert len(got.step_scores) == len(steps)
        assert got.step_scores == pytest.approx(expected, abs=1e-5)
        assert got.score == pytest.approx(math.prod(expected), abs=1e-5)


# --- qwen-prm ---------------------------------------------------------------------------------


def qwen_text(problem: str, steps: list[str]) -> str:
    return (
        "<|im_start|>system\nbe careful<|im_end|>\n<|im_start|>user\n"
        f"{problem}<|im_end|>\n<|im_start|>assistant\n"
        + "".join(f"{s}<extra_0>" for s in steps)
        + "<|im_end|>\n"
    )


def test_qwen_separator_from_tokenizer_and_manual_forward(tmp_path):
    model, tok = qwen_checkpoint(tmp_path)
    adapter = load_adapter(tmp_path, device="cpu")
    assert adapter.name == "qwen-prm"
    assert adapter.separator_id == tok.convert_tokens_to_ids("<extra_0>") == 7
    assert adapter.separator_id != len(tok) - 1
    scores = adapter.score(SAMPLES)
    for (problem, steps), got in zip(SAMPLES, scores, strict=True):
        ids = ids_of(tok, qwen_text(problem, steps))
        assert adapter.encode(problem, steps).input_ids == ids
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        expected = logits[torch.tensor(ids) == 7].softmax(-1)[:, 1].tolist()
        assert len(got.step_scores) == len(steps) == len(expected)
        assert got.step_scores == pytest.approx(expected, abs=1e-5)


def test_qwen_closed_form(tmp_path):
    bias = [0.4, -0.7]
    qwen_checkpoint(tmp_path, bias=bias)
    adapter = load_adapter(tmp_path, device="cpu")
    p_correct = softmax(bias)[1]
    for (_, steps), s in zip(SAMPLES, adapter.score(SAMPLES), strict=True):
        assert s.step_scores == pytest.approx([p_correct] * len(steps), abs=1e-6)
        assert s.score == pytest.approx(p_correct ** len(steps), abs=1e-6)
    # neutral_is_positive has no effect on a 2-class model.
    again = adapter.score(SAMPLES, neutral_is_positive=False)
    assert again[0].step_scores == pytest.approx([p_correct] * 2, abs=1e-6)
    # Separator strings in user text are removed, not turned into extra steps.
    enc = adapter.encode("x <extra_0> y", ["z <extra_0> z"])
    assert enc.input_ids.count(7) == 1 and len(enc.positions) == 1


def test_qwen_missing_separator_is_a_clear_error(tmp_path):
    qwen_checkpoint(tmp_path, with_separator=False)
    with pytest.raises(CheckpointError, match="<extra_0>"):
        load_adapter(tmp_path, device="cpu")


# --- tag-token (Math-Shepherd) ----------------------------------------------------------------


def shepherd_text(problem: str, steps: list[str]) -> str:
    return problem + " " + "\n".join(f"Step {i}: {s} ки" for i, s in enumerate(steps, 1))


def test_tag_token_manual_forward(tmp_path):
    model, tok = tag_checkpoint(tmp_path)
    adapter = load_adapter(tmp_path, device="cpu")
    assert adapter.name == "tag-token"
    tag, plus, minus = (tok.convert_tokens_to_ids(t) for t in ("ки", "+", "-"))
    for (problem, steps), got in zip(SAMPLES, adapter.score(SAMPLES), strict=True):
        ids = ids_of(tok, shepherd_text(problem, steps))
        assert adapter.encode(problem, steps).input_ids == ids
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        at = logits[torch.tensor(ids) == tag][:, [plus, minus]].softmax(-1)
        expected = at[:, 0].tolist()
        assert len(got.step_scores) == len(steps)
        assert got.step_scores == pytest.approx(expected, abs=1e-5)


def test_tag_token_closed_form(tmp_path):
    good, bad = 1.5, -0.5
    tag_checkpoint(tmp_path, closed_form=(good, bad))
    adapter = load_adapter(tmp_path, device="cpu")
    p_good = 1 / (1 + math.exp(bad - good))
    for (_, steps), s in zip(SAMPLES, adapter.score(SAMPLES), strict=True):
        assert s.step_scores == pytest.approx([p_good] * len(steps), abs=1e-5)
        assert s.score == pytest.approx(p_good ** len(steps), abs=1e-5)


# --- batching invariance and truncation -------------------------------------------------------


@pytest.mark.parametrize("kind", ["native", "qwen", "tag"])
def test_scores_do_not_depend_on_batching_or_order(tmp_path, kind):
    {"native": native_checkpoint, "qwen": qwen_checkpoint, "tag": tag_checkpoint}[kind](tmp_path)
    adapter = load_adapter(tmp_path, device="cpu")
    samples = varied_samples(40)
    reference = adapter.score(samples, max_batch_size=1)
    runs = [
        adapter.score(samples, token_budget=64),
        adapter.score(samples, token_budget=400),
        adapter.score(samples, token_budget=10**6),
    ]
    order = list(range(len(samples)))
    random.Random(3).shuffle(order)
    shuffled = adapter.score([samples[i] for i in order], token_budget=300)
    runs.append([shuffled[order.index(i)] for i in range(len(samples))])
    for run in runs:
        assert len(run) == len(samples)
        for a, b in zip(reference, run, strict=True):
            assert len(a.step_scores) == len(b.step_scores)
            diff = max(abs(x - y) for x, y in zip(a.step_scores, b.step_scores, strict=True))
            assert diff <= 1e-5
            assert abs(a.score - b.score) <= 1e-5


def test_stats_report_padding(tmp_path):
    native_checkpoint(tmp_path)
    adapter = load_adapter(tmp_path, device="cpu")
    samples = varied_samples(30)
    _, stats = adapter.score_with_stats(samples, token_budget=200)
    real = sum(len(e.input_ids) for e in adapter.encode_many(samples))
    assert stats.real_tokens == real
    assert stats.padded_tokens >= real
    assert 0 < stats.padding_efficiency <= 1
    assert stats.n_samples == 30 and stats.n_batches >= 2
    assert stats.tokens_per_s > 0 and stats.as_dict()["samples_per_s"] > 0


def test_native_truncation(tmp_path):
    native_checkpoint(tmp_path, max_length=24)
    adapter = load_adapter(tmp_path, device="cpu")
    assert adapter.max_length == 24 and adapter.max_problem_tokens == 12
    steps = ["one plus two = 3", "so the answer is 3", "we add x", "then we get z"]
    [s] = adapter.score([("what is one plus two", steps)])
    assert s.truncated and 0 < s.n_scored_steps < len(steps)
    assert len(s.step_scores) == s.n_scored_steps
    enc = adapter.encode("what is one plus two", steps)
    assert len(enc.input_ids) <= 24 and len(enc.positions) == s.n_scored_steps
    # A long problem is cut to max_problem_tokens; an overlong first step keeps its head.
    long_problem = " ".join(["x"] * 40)
    enc = adapter.encode(long_problem, [" ".join(["y"] * 40), "z"])
    assert enc.truncated and len(enc.positions) == 1 and len(enc.input_ids) == 24
    assert enc.input_ids[1:13] == [NATIVE_VOCAB.index("x")] * 12
    [short] = adapter.score([("what is x", ["so z"])])
    assert not short.truncated and short.n_scored_steps == 1


def test_causal_truncation_keeps_prefix_scores(tmp_path):
    tag_checkpoint(tmp_path)
    full = load_adapter(tmp_path, device="cpu")
    short = load_adapter(tmp_path, device="cpu", max_length=30)
    steps = ["one plus two = 3", "so the answer is 3", "we add x", "then we get z", "so z"]
    [a] = full.score([("what is one plus two", steps)])
    [b] = short.score([("what is one plus two", steps)])
    assert not a.truncated and a.n_scored_steps == 5
    assert b.truncated and 0 < b.n_scored_steps < 5
    assert b.step_scores == pytest.approx(a.step_scores[: b.n_scored_steps], abs=1e-5)
    assert b.score == pytest.approx(math.prod(b.step_scores), rel=1e-9)
    [c] = short.score([(" ".join(["x"] * 50), [" ".join(["y"] * 50)])])
    assert c.truncated and c.n_scored_steps == 1


# --- loading ----------------------------------------------------------------------------------


def test_missing_path_and_missing_config(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_adapter(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_adapter(tmp_path)


def test_remote_code_is_never_run(tmp_path):
    native_checkpoint(tmp_path)
    marker = tmp_path / "ran.txt"
    (tmp_path / "evil_modeling.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('remote code executed')\n"
    )
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "evil_modeling.EvilConfig",
        "AutoModelForTokenClassification": "evil_modeling.EvilModel",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    tok_config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    tok_config["auto_map"] = {"AutoTokenizer": ["evil_modeling.EvilTokenizer", None]}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(tok_config))
    adapter = load_adapter(tmp_path, device="cpu")
    assert type(adapter.model).__name__ == "BertForTokenClassification"
    assert type(adapter.tokenizer).__module__.startswith("transformers.")
    assert adapter.score(SAMPLES[:1])[0].n_scored_steps == 2
    # A model type transformers does not know would need the checkpoint's code: refused.
    config["model_type"] = "evil-custom"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="never runs"):
        load_adapter(tmp_path, device="cpu")
    assert not marker.exists()


def test_prefers_safetensors_and_falls_back_to_bin(tmp_path, caplog):
    model, _ = native_checkpoint(tmp_path, bias=[0.0, 0.0, 0.0])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["classifier.bias"] = torch.tensor([5.0, 0.0, 0.0])
    torch.save(state, tmp_path / "pytorch_model.bin")
    adapter = load_adapter(tmp_path, device="cpu")
    assert adapter.model.classifier.bias.tolist() == [0.0, 0.0, 0.0]
    (tmp_path / "model.safetensors").unlink()
    with caplog.at_level(logging.WARNING, logger="selector.scoring"):
        adapter = load_adapter(tmp_path, device="cpu")
    assert adapter.model.classifier.bias.tolist() == [5.0, 0.0, 0.0]
    assert "no safetensors" in caplog.text
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match="no model weights"):
        load_adapter(tmp_path, device="cpu")


def test_mismatched_weights_are_refused(tmp_path):
    native_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["architectures"] = ["BertForTokenClassification"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    # The same weights read as a causal LM leave its head uninitialised: refused.
    with pytest.raises(CheckpointError):
        load_adapter(tmp_path, adapter="tag-token", device="cpu")


def test_get_adapter_caches_and_reloads_on_change(tmp_path):
    clear_adapter_cache()
    native_checkpoint(tmp_path)
    a = get_adapter(tmp_path, device="cpu")
    assert get_adapter(tmp_path, device="cpu") is a
    prm_json = tmp_path / "stepwise_prm.json"
    stat = prm_json.stat()
    os.utime(prm_json, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    b = get_adapter(tmp_path, device="cpu")
    assert b is not a
    assert get_adapter(tmp_path, device="cpu") is b
    clear_adapter_cache()


# --- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_builds_loads_and_scores_in_seconds(tmp_path):
    rows = [json.loads(line) for line in (DATA / "processbench_math.jsonl").open()][:60]
    samples = [(r["problem"], r["steps"]) for r in rows]
    start = time.perf_counter()
    out = build_bootstrap_model(
        texts_from_samples(samples),
        tmp_path / "boot",
        vocab_size=600,
        hidden=32,
        layers=1,
        heads=2,
        max_length=256,
    )
    adapter = load_adapter(out, device="cpu")
    scores = adapter.score(samples[:20])
    elapsed = time.perf_counter() - start
    assert elapsed < 30
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "stepwise_prm.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    prm = json.loads((out / "stepwise_prm.json").read_text())
    assert prm["adapter"] == "token-classification"
    assert prm["labels"] == ["negative", "neutral", "positive"]
    assert prm["separator"] == "[STEP]" and prm["max_length"] == 256
    assert adapter.tokenizer.convert_tokens_to_ids("[STEP]") == 5
    # LaTeX commands stay whole; digits are split one by one.
    assert adapter.tokenizer.tokenize("\\frac{12}{3}")[:3] == ["\\frac", "{", "1"]
    for (_, steps), s in zip(samples[:20], scores, strict=True):
        assert 0 < s.score < 1
        assert all(0 < x < 1 for x in s.step_scores)
        assert s.n_scored_steps == len(s.step_scores) <= len(steps)
    # Same seed, same weights.
    again = build_bootstrap_model(
        texts_from_samples(samples),
        tmp_path / "boot2",
        vocab_size=600,
        hidden=32,
        layers=1,
        heads=2,
        max_length=256,
    )
    b = load_adapter(again, device="cpu")
    assert [s.score for s in b.score(samples[:5])] == pytest.approx(
        [s.score for s in scores[:5]], abs=1e-7
    )
