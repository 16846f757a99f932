"""Benchmark PRM scoring per adapter: FLOP/s as a fraction of this machine's own matmul peak.

The peak is measured in the same run: the best of a few dense square matmuls (fp32 on CPU,
bf16 on CUDA), ``2·n³ / seconds``. Each adapter then scores the same real ProcessBench MATH
solutions through token-budget batching (:mod:`selector.scoring.batching`), and its model
FLOP/s is

    (2 · non-embedding matmul parameters · real tokens + attention) / model seconds

with attention = ``4 · layers · hidden · Σ Lᵢ²`` (QKᵀ and AV over each input of length Lᵢ;
half that for causal models), padding not counted as useful work. Utilisation = model FLOP/s
÷ measured peak. Models have random weights in the published shapes:

* ``token-classification``: the bootstrap encoder (BPE trained on the data, BERT hidden 256 ×
  4 layers) and, with ``--minilm`` when it is installed, all-MiniLM-L6-v2;
* ``qwen-prm``, ``skywork-prm``, ``tag-token``: Qwen2.5-0.5B-shaped decoders (hidden 896, 14
  heads, 2 KV heads), layers cut by ``--decoder-layers`` (default 2 on CPU, 24 on CUDA); with
  ``--seven-b`` also a Qwen2.5-7B-shaped one (hidden 3584, 28 heads, 4 KV heads, ``--7b-layers``).

The batched scores are checked against one-sample-at-a-time scoring on the first samples
(they must agree within 1e-4 in fp32). Targets (issue #10): ≥ 50 % of the fp32 peak on CPU for
the native encoder; ≥ 40 % of the bf16 peak on a GPU for the 0.5B- and 7B-shaped decoders.

    python benchmarks/bench_scoring.py [--limit 200] [--json bench-results/scoring.json]
    python benchmarks/bench_scoring.py --device cuda --seven-b --limit 512   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from selector.scoring import build_bootstrap_model, load_adapter
from selector.scoring.adapters import (
    PRMAdapter,
    QwenPRMAdapter,
    SkyworkPRMAdapter,
    TagTokenAdapter,
)
from selector.scoring.bootstrap import texts_from_samples
from selector.scoring.checkpoint import PRMConfig
from selector.scoring.device import resolve_device
from selector.scoring.formulas import LABELS_2


def find_data() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "processbench_math.jsonl"


def load_samples(path: Path, limit: int) -> list[tuple[str, list[str]]]:
    samples = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            samples.append((row["problem"], list(row["steps"])))
            if len(samples) >= limit:
                break
    return samples


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5) -> float:
    """Best dense ``n × n`` matmul FLOP/s on ``device`` in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    (a @ b).sum().item()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def matmul_params(model) -> tuple[int, int, int, bool]:
    """(non-embedding weight-matrix parameters, layers, hidden, causal) of a PRM body."""
    config = model.config
    body = getattr(model, model.base_model_prefix, model)
    embeddings = {id(m) for m in body.modules() if isinstance(m, torch.nn.Embedding)}
    n = sum(
        m.weight.numel()
        for m in body.modules()
        if isinstance(m, torch.nn.Linear) and id(m) not in embeddings
    )
    causal = "bert" not in str(config.model_type)
    return n, int(config.num_hidden_layers), int(config.hidden_size), causal


def batched_vs_single(adapter: PRMAdapter, samples) -> float:
    batched = adapter.score(samples)
    worst = 0.0
    for sample, b in zip(samples, batched, strict=True):
        single = adapter.score([sample])[0]
        pairs = zip(single.step_scores, b.step_scores, strict=True)
        worst = max(worst, *(abs(x - y) for x, y in pairs))
    return worst


def measure(name: str, shape: str, adapter: PRMAdapter, samples, args, peak: float) -> dict:
    """Score ``samples`` ``repeats`` times; the fastest run's FLOP/s against ``peak``."""
    device = adapter.device
    adapter.score(samples[:4], token_budget=args.token_budget)  # kernels, allocator
    sync(device)
    best = None
    for _ in range(args.repeats):
        _, stats = adapter.score_with_stats(samples, token_budget=args.token_budget)
        sync(device)
        if best is None or stats.model_seconds < best.model_seconds:
            best = stats
    lengths = [len(e.input_ids) for e in adapter.encode_many(samples)]
    n_params, layers, hidden, causal = matmul_params(adapter.model)
    attention = 4 * layers * hidden * sum(n * n for n in lengths) * (0.5 if causal else 1.0)
    flops = 2 * n_params * sum(lengths) + attention
    flops_per_s = flops / best.model_seconds
    out = {
        "adapter": name,
        "model": shape,
        "matmul_params_M": n_params / 1e6,
        "real_tokens": best.real_tokens,
        "padding_efficiency": best.padding_efficiency,
        "model_seconds": best.model_seconds,
        "encode_seconds": best.encode_seconds,
        "tokens_per_s": best.real_tokens / best.model_seconds,
        "tflops": flops_per_s / 1e12,
        "fraction_of_peak": flops_per_s / peak,
    }
    if args.check:
        out["max_abs_diff_batched_vs_single"] = batched_vs_single(adapter, samples[: args.check])
    print(json.dumps(out), flush=True)
    return out


def qwen2_config(shape: str, layers: int, vocab_size: int, num_labels: int = 2):
    from transformers import Qwen2Config

    dims = {
        "0.5B": {
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
        },
        "7B": {
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
        },
    }[shape]
    return Qwen2Config(
        vocab_size=vocab_size,
        num_hidden_layers=layers,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=False,
        num_labels=num_labels,
        pad_token_id=0,
        **dims,
    )


def byte_level_tokenizer(samples):
    """A Qwen-like byte-level BPE (newlines kept) trained on the samples, with the specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>", "ки"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts_from_samples(samples), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        extra_special_tokens=special[1:],
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def decoder_adapters(samples, shape: str, layers: int, device, dtype):
    """qwen-prm, skywork-prm and tag-token adapters on random Qwen2 models of one shape."""
    from transformers import Qwen2ForCausalLM

    from selector.scoring.heads import Qwen2PrmValueModel, Qwen2ProcessRewardModel

    tokenizer = byte_level_tokenizer(samples)
    config = qwen2_config(shape, layers, len(tokenizer))
    label = f"Qwen2.5-{shape}-shaped, {layers} layers"
    kinds = [
        ("qwen-prm", QwenPRMAdapter, Qwen2ProcessRewardModel, "<extra_0>"),
        ("skywork-prm", SkyworkPRMAdapter, Qwen2PrmValueModel, "\n"),
        ("tag-token", TagTokenAdapter, Qwen2ForCausalLM, "[STEP]"),
    ]
    for name, cls, model_cls, separator in kinds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = model_cls(config).to(device=device, dtype=dtype)
        prm = PRMConfig(adapter=name, labels=list(LABELS_2), separator=separator, max_length=4096)
        yield name, label, cls(model, tokenizer, prm, device=device)
        del model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="ProcessBench-style JSONL")
    parser.add_argument("--limit", type=int, default=200, help="number of samples")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--token-budget", type=int, default=None, help="max padded tokens/batch")
    parser.add_argument("--max-length", type=int, default=1024, help="native model max length")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--decoder-layers", type=int, default=None, help="0.5B-shaped layers")
    parser.add_argument("--seven-b", action="store_true", help="also a 7B-shaped decoder")
    parser.add_argument("--7b-layers", dest="seven_b_layers", type=int, default=4)
    parser.add_argument("--minilm", action="store_true", help="also all-MiniLM-L6-v2")
    parser.add_argument("--only", nargs="*", help="adapters to run (default: all)")
    parser.add_argument("--check", type=int, default=8, help="samples checked one by one")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    on_cuda = device.type == "cuda"
    dtype = torch.bfloat16 if on_cuda else torch.float32
    if args.token_budget is None:
        args.token_budget = 65536 if on_cuda else 8192
    layers = args.decoder_layers or (24 if on_cuda else 2)
    samples = load_samples(args.data or find_data(), args.limit)
    peak = matmul_peak(device, dtype, 8192 if on_cuda else 2048)
    print(f"measured dense matmul peak: {peak / 1e12:.3f} TFLOP/s ({dtype}, {device})")
    wanted = set(args.only or ["token-classification", "qwen-prm", "skywork-prm", "tag-token"])

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "token-classification" in wanted:
            path = build_bootstrap_model(
                texts_from_samples(samples),
                Path(tmp) / "prm",
                vocab_size=4096,
                hidden=256,
                layers=4,
                heads=4,
                max_length=args.max_length,
                seed=0,
            )
            adapter = load_adapter(path, device=device)
            rows.append(
                measure(
                    "token-classification", "bootstrap BERT 256x4", adapter, samples, args, peak
                )
            )
            if args.minilm:
                from selector.training import TrainingConfig, default_base, train_prm
                from selector.training.examples import example_from_first_error

                base = default_base()
                if base is not None:
                    # One tiny epoch turns the base into a native checkpoint (head + [STEP]).
                    ex = [example_from_first_error(p, s[:2], -1) for p, s in samples[:4]]
                    out = Path(tmp) / "minilm"
                    train_prm(
                        ex,
                        TrainingConfig(out_dir=out, base=base, epochs=1, val_problems=0.0),
                    )
                    adapter = load_adapter(out, device=device)
                    rows.append(
                        measure(
                            "token-classification", "all-MiniLM-L6-v2", adapter, samples, args, peak
                        )
                    )
    shapes = [("0.5B", layers)] + ([("7B", args.seven_b_layers)] if args.seven_b else [])
    for shape, n_layers in shapes:
        for name, label, adapter in decoder_adapters(samples, shape, n_layers, device, dtype):
            if name in wanted:
                rows.append(measure(name, label, adapter, samples, args, peak))
            del adapter
            if on_cuda:
                torch.cuda.empty_cache()

    print(
        f"{len(samples)} ProcessBench samples, token budget {args.token_budget}, "
        f"{torch.get_num_threads()} threads"
        if not on_cuda
        else f"{len(samples)} samples on {torch.cuda.get_device_name(device)}"
    )
    print(f"{'adapter':22} {'model':34} {'tok/s':>9} {'TFLOP/s':>8} {'of peak':>8} {'pad eff':>8}")
    for r in rows:
        print(
            f"{r['adapter']:22} {r['model']:34} {r['tokens_per_s']:9.0f} {r['tflops']:8.3f} "
            f"{100 * r['fraction_of_peak']:7.1f}% {r['padding_efficiency']:8.2f}"
        )
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_cuda else platform.processor(),
        "dtype": str(dtype),
        "threads": torch.get_num_threads(),
        "peak_tflops_measured": peak / 1e12,
        "n_samples": len(samples),
        "token_budget": args.token_budget,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    worst = max((r.get("max_abs_diff_batched_vs_single", 0.0) for r in rows), default=0.0)
    ok = worst <= (1e-4 if not on_cuda else 2e-2)
    print(f"batched and one-by-one scores agree (max diff {worst:.2g}):", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
