"""Benchmark PRM scoring: token-budget batching vs a naive one-sample-at-a-time loop.

Default mode (CPU or GPU): a bootstrap-style native encoder (BPE tokenizer trained on the
data, BERT encoder, hidden 256, 4 layers) scores ~500 real ProcessBench MATH solutions
twice, batched by token budget and one sample at a time, and reports tokens/s, samples/s,
the speedup, the largest score difference between the two, and the padding efficiency.

``--gpu-large``: a Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads, 2 KV heads,
vocab 151936) with a 2-class token classification head, random weights, bf16 on CUDA, scored
through the qwen-prm adapter; reports tokens/s and model FLOP utilisation
``2 · non_embedding_params · tokens/s ÷ peak``, attention FLOPs not counted. The default peak
is the H100 SXM dense bf16 figure, 989 TFLOP/s (``--peak-tflops`` to change it).

    python benchmarks/bench_scoring.py --json bench-results/scoring.json
    python benchmarks/bench_scoring.py --gpu-large --device cpu --limit 8   # smoke check
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
from selector.scoring.adapters import PRMAdapter, QwenPRMAdapter
from selector.scoring.bootstrap import texts_from_samples, train_tokenizer
from selector.scoring.checkpoint import PRMConfig
from selector.scoring.device import resolve_device
from selector.scoring.formulas import LABELS_2, aggregate

H100_SXM_BF16_DENSE_TFLOPS = 989.0


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


def naive_scores(adapter: PRMAdapter, samples) -> tuple[list[float], list[list[float]], float]:
    """One sample at a time: encode, forward with batch size 1, read the separators."""
    device = adapter.device
    cols = [adapter.labels.index("positive")]
    if "neutral" in adapter.labels:
        cols.append(adapter.labels.index("neutral"))
    scores, steps_out = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for problem, steps in samples:
            enc = adapter.encode(problem, steps)
            ids = torch.tensor([enc.input_ids], device=device)
            mask = torch.ones_like(ids)
            rows = torch.zeros(len(enc.positions), dtype=torch.long, device=device)
            pos = torch.tensor(enc.positions, dtype=torch.long, device=device)
            probs = adapter.forward_probs(ids, mask, rows, pos).double()
            step_scores = probs[:, cols].sum(dim=1).tolist()
            steps_out.append(step_scores)
            scores.append(aggregate(step_scores))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return scores, steps_out, time.perf_counter() - start


def max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            worst = max(worst, abs(u - v))
    return worst


def bench_native(args, samples) -> dict:
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
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
        build_s = time.perf_counter() - t0
        adapter = load_adapter(path, device=device)
    params = sum(p.numel() for p in adapter.model.parameters())
    # Warm-up: first calls allocate and pick kernels.
    adapter.score(samples[:16], token_budget=args.token_budget)
    naive_scores(adapter, samples[:4])

    best = None
    for _ in range(args.repeats):
        results, stats = adapter.score_with_stats(samples, token_budget=args.token_budget)
        if best is None or stats.seconds < best[1].seconds:
            best = (results, stats)
    results, stats = best
    naive_best = None
    for _ in range(args.repeats):
        run = naive_scores(adapter, samples)
        if naive_best is None or run[2] < naive_best[2]:
            naive_best = run
    n_scores, n_steps, naive_s = naive_best
    real = stats.real_tokens
    diff_steps = max_diff([r.step_scores for r in results], n_steps)
    diff_solution = max(abs(r.score - s) for r, s in zip(results, n_scores, strict=True))
    return {
        "mode": "native",
        "model": f"bootstrap BERT hidden 256 x 4 layers, {params / 1e6:.1f}M params",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "n_samples": len(samples),
        "max_length": adapter.max_length,
        "token_budget": args.token_budget,
        "build_seconds": build_s,
        "real_tokens": real,
        "padded_tokens": stats.padded_tokens,
        "padding_efficiency": stats.padding_efficiency,
        "n_batches": stats.n_batches,
        "n_truncated": stats.n_truncated,
        "batched_seconds": stats.seconds,
        "batched_tokens_per_s": real / stats.seconds,
        "batched_samples_per_s": len(samples) / stats.seconds,
        "naive_seconds": naive_s,
        "naive_tokens_per_s": real / naive_s,
        "naive_samples_per_s": len(samples) / naive_s,
        "speedup": naive_s / stats.seconds,
        "max_abs_diff_step_scores": diff_steps,
        "max_abs_diff_solution_scores": diff_solution,
    }


def qwen_05b_config(num_labels: int = 2):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
        num_labels=num_labels,
        pad_token_id=0,
    )


def bench_gpu_large(args, samples) -> dict:
    from transformers import Qwen2ForTokenClassification

    device = resolve_device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = train_tokenizer(texts_from_samples(samples), vocab_size=4096, max_length=4096)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<extra_0>"]},
        replace_extra_special_tokens=False,
    )
    config = qwen_05b_config()
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForTokenClassification(config).to(device=device, dtype=dtype)
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    adapter = QwenPRMAdapter(
        model,
        tokenizer,
        PRMConfig(
            adapter="qwen-prm", labels=list(LABELS_2), separator="<extra_0>", max_length=4096
        ),
        device=device,
    )
    if device.type == "cuda":
        adapter.score(samples[:2], token_budget=args.token_budget)  # CUDA context, kernels
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    results, stats = adapter.score_with_stats(samples, token_budget=args.token_budget)
    if device.type == "cuda":
        torch.cuda.synchronize()
    tps = stats.real_tokens / stats.model_seconds
    peak = args.peak_tflops * 1e12
    out = {
        "mode": "gpu-large",
        "model": "Qwen2.5-0.5B-shaped Qwen2ForTokenClassification (random weights)",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype),
        "params": params,
        "non_embedding_params": params - embed,
        "build_seconds": build_s,
        "n_samples": len(samples),
        "token_budget": args.token_budget,
        "real_tokens": stats.real_tokens,
        "padded_tokens": stats.padded_tokens,
        "padding_efficiency": stats.padding_efficiency,
        "n_batches": stats.n_batches,
        "seconds": stats.seconds,
        "model_seconds": stats.model_seconds,
        "tokens_per_s": tps,
        "samples_per_s": len(samples) / stats.seconds,
        "peak_tflops": args.peak_tflops,
        "mfu": 2 * (params - embed) * tps / peak,
        "mfu_note": "2 * non_embedding_params * real tokens/s (model time) / peak; "
        "attention FLOPs not counted; peak default = H100 SXM dense bf16 989 TFLOP/s",
        "scores_in_unit_interval": all(0 < r.score < 1 for r in results),
    }
    if device.type == "cuda":
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="ProcessBench-style JSONL")
    parser.add_argument("--limit", type=int, default=500, help="number of samples")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--token-budget", type=int, default=None, help="max padded tokens/batch")
    parser.add_argument("--max-length", type=int, default=1024, help="native model max length")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--gpu-large", action="store_true", help="0.5B-parameter model run")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_SXM_BF16_DENSE_TFLOPS,
        help="peak dense bf16 TFLOP/s for MFU (default: H100 SXM, 989)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.token_budget is None:
        on_cuda = resolve_device(args.device).type == "cuda"
        # On CPU the 0.5B model is a smoke check: small batches waste less compute on padding.
        args.token_budget = (65536 if on_cuda else 4096) if args.gpu_large else 16384
    samples = load_samples(args.data or find_data(), args.limit)
    result = bench_gpu_large(args, samples) if args.gpu_large else bench_native(args, samples)
    result.update(
        torch=torch.__version__, python=platform.python_version(), machine=platform.machine()
    )
    for key, value in result.items():
        print(f"{key:32s} {value:.4g}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if result["mode"] == "native":
        ok = result["max_abs_diff_step_scores"] <= 1e-4
        print("scores agree (<= 1e-4):", ok)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
