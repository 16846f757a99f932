"""Evaluate a checkpoint on a campaign's evaluation data and store the results on it.

    evaluate --checkpoint ID --campaign SLUG [--json] [--trials T] [--max-test-problems N]
             [--gate] [--processbench FILE]

Data (`workers.loop.evaluation_data`):
- best-of-N on the campaign's test-split problems with ≥ 2 graded samples: accuracy of the
  sample picked by the PRM's solution score, by the last step's score (ORM-style) and by
  majority vote, N = 1, 2, 4, … up to the smallest M, `--trials` random subsets per N
  (exact when there are fewer distinct subsets), PRM800K's published procedure;
- first-error metrics (ProcessBench: accuracy on erroneous samples = exact first-error index,
  accuracy on correct samples = no error predicted, F1 their harmonic mean) on the labeled
  validation problems and, separately, on the campaign's gold items. A step is predicted
  wrong when its step score 1 − P(negative) is below the threshold 0.5;
- step-level ROC AUC (positive = not negative) and validation cross-entropy on the labeled
  validation problems (the same hash hold-out the training uses).
Results go to `Checkpoint.metrics`. `--gate` also evaluates the active checkpoint on the
same data and promotes this one only if it beats it on the campaign's promotion metric.
"""

from __future__ import annotations

import json

from django.core.management.base import CommandError
from django.db import transaction

from annotate.io import ImportFailed
from annotate.io.processbench import read_processbench
from annotate.management._io import open_input
from annotate.management.command import StepwiseCommand
from annotate.models import Campaign, Checkpoint
from selector.evaluation import evaluate_checkpoint
from selector.scoring import get_adapter
from workers import loop


class Command(StepwiseCommand):
    help = "Evaluate a checkpoint (best-of-N, first-error F1, step AUC, val loss) and store it."
    runtime = (
        "Not benchmarked: a run scores the campaign's held-out problems once, about as long as "
        "`score` on that many samples (a minute per ~800 with the bootstrap PRM on CPU)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", type=int, required=True, metavar="ID", help="Checkpoint to measure."
        )
        parser.add_argument(
            "--campaign", required=True, metavar="SLUG", help="Whose held-out data to use."
        )
        parser.add_argument("--json", action="store_true", help="Print the metrics as JSON.")
        parser.add_argument(
            "--trials",
            type=int,
            default=loop.BEST_OF_N_TRIALS,
            help="Best-of-N random subsets per N.",
        )
        parser.add_argument(
            "--max-test-problems", type=int, metavar="N", help="Cap on best-of-N problems."
        )
        parser.add_argument(
            "--gate",
            action="store_true",
            help="Compare with the active checkpoint on the same data; promote if better.",
        )
        parser.add_argument(
            "--processbench",
            metavar="FILE",
            help="Also report ProcessBench F1 on this ProcessBench JSONL file.",
        )

    def handle(self, *args, **opts):
        campaign = Campaign.objects.filter(slug=opts["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign {opts['campaign']!r}")
        checkpoint = Checkpoint.objects.filter(pk=opts["checkpoint"]).first()
        if checkpoint is None:
            raise CommandError(f"no checkpoint {opts['checkpoint']}")
        if problem := campaign.ownership_error(checkpoint):
            raise CommandError(problem)
        if checkpoint.status in (Checkpoint.Status.TRAINING, Checkpoint.Status.FAILED):
            raise CommandError(f"checkpoint {checkpoint.pk} is {checkpoint.status}")
        if opts["trials"] < 1:
            raise CommandError("--trials must be at least 1")

        bench = self._read_processbench(opts["processbench"]) if opts["processbench"] else None
        data = loop.evaluation_data(campaign, max_test_problems=opts["max_test_problems"])
        if data.empty:
            self.stderr.write(
                "No evaluation data: no labeled validation problems, no test problems with "
                "graded samples, no gold items."
            )
        gate = None
        if opts["gate"] and campaign.active_checkpoint_id != checkpoint.pk:
            gate = loop.compare_with_active(checkpoint, campaign, data=data, trials=opts["trials"])
            with transaction.atomic():
                locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
                fresh = Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
                gate = loop.apply_gate(fresh, locked)
            checkpoint.refresh_from_db()
            metrics = checkpoint.metrics
        else:
            metrics = loop.evaluate_and_store(
                checkpoint, campaign, data=data, trials=opts["trials"]
            )

        if bench is not None:
            metrics = {**metrics, "processbench": self._processbench(checkpoint, bench)}
        if opts["json"]:
            self.stdout.write(json.dumps({"checkpoint": checkpoint.pk, **metrics}, indent=2))
            return
        self.stdout.write(self._summary(checkpoint, metrics, gate))

    def _read_processbench(self, path: str) -> list:
        """The ProcessBench file's solutions, read before any model runs."""
        try:
            with open_input(path) as stream:
                return read_processbench(stream)
        except ImportFailed as exc:
            raise CommandError(f"{path}: {exc}") from None

    def _processbench(self, checkpoint: Checkpoint, samples: list) -> dict:
        """ProcessBench acc/F1 of the checkpoint on those solutions (reported, not stored)."""
        adapter = get_adapter(checkpoint.path, checkpoint.adapter)
        return evaluate_checkpoint(adapter, first_error=samples or None).get("first_error", {})

    def _summary(self, checkpoint: Checkpoint, metrics: dict, gate: dict | None) -> str:
        s, d = metrics["summary"], metrics["data"]
        lines = [
            f"Checkpoint {checkpoint.pk} ({checkpoint.name}) on campaign data: "
            f"{d['n_val_examples']} validation solutions ({d['n_val_problems']} problems), "
            f"{d['n_test_problems']} test problems ({d['n_test_samples']} graded samples), "
            f"{d['n_gold']} gold items.",
            f"  validation loss      {_fmt(s['val_loss'])}",
            f"  step AUC             {_fmt(s['step_auc'])}",
            f"  first-error F1 (val) {_fmt(s['first_error_f1'])}   (gold: "
            f"{_fmt(s['gold_first_error_f1'])}; step wrong when 1 − P(neg) < 0.5)",
        ]
        curves = metrics.get("best_of_n")
        if curves:
            lines.append(
                "  best-of-N accuracy   N: " + " ".join(f"{n:>6}" for n, _ in curves["prm"])
            )
            for method in ("prm", "orm", "majority"):
                values = " ".join(f"{acc:6.3f}" for _, acc in curves[method])
                lines.append(f"    {method:<18} {values}")
        bench = metrics.get("processbench")
        if bench is not None:
            lines.append(
                f"  ProcessBench F1      {_fmt(bench.get('f1'))}   (acc erroneous "
                f"{_fmt(bench.get('acc_erroneous'))}, acc correct {_fmt(bench.get('acc_correct'))})"
            )
        if gate is not None:
            lines.append(f"Gate: {gate['decision']} ({gate['reason']}).")
        return "\n".join(lines)


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4f}"
