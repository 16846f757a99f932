"""Train a native PRM on a campaign's labels (and optionally PRM800K records), in this process.

    train_prm --campaign SLUG [--base PATH] [--epochs N] [--prm800k FILE] [--val-fraction F]
              [--device cpu|cuda] [--resume CHECKPOINT_ID] [--json]

Supervision up to the first error, three classes (negative, neutral, positive); problems held
out for validation by the campaign's stable hash split (`workers.loop.validation_keys`);
CPU or CUDA. Writes a Checkpoint (status `ready`) with its training record. The default base
is the campaign's active checkpoint (warm start); with none, a bootstrap model is built from
the labeled text. An interrupted run continues with `--resume ID`. Promotion is separate:
`evaluate --checkpoint ID --campaign SLUG --gate`.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from annotate.management.command import StepwiseCommand
from annotate.models import Campaign, Checkpoint
from annotate.retraining import new_checkpoint
from workers import loop


class Command(StepwiseCommand):
    help = "Train a native PRM on the campaign's labels and register it as a checkpoint."
    runtime = (
        "Not benchmarked with the default bootstrap base; fine-tuning MiniLM costs ~265 s per "
        "200 examples on 2 shared CPU cores (README, The simulator)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--campaign", required=True, metavar="SLUG", help="Whose labels to train on."
        )
        parser.add_argument(
            "--base",
            metavar="PATH",
            help="Directory to start from: a native checkpoint, a published PRM (qwen-prm, "
            "skywork-prm) or any local Hugging Face encoder/decoder (a 3-class head is added).",
        )
        parser.add_argument("--epochs", type=int, metavar="N", help="Default: the campaign's.")
        parser.add_argument(
            "--prm800k",
            metavar="FILE",
            help="PRM800K JSONL records to train on as well (phase-1 alternatives included).",
        )
        parser.add_argument(
            "--val-fraction",
            type=float,
            default=loop.VAL_FRACTION,
            help="Share of problems held out for validation.",
        )
        parser.add_argument("--device", help="cpu or cuda; default CUDA when available.")
        parser.add_argument(
            "--resume", type=int, metavar="ID", help="Continue this checkpoint's training."
        )
        parser.add_argument("--json", action="store_true", help="Print the record as JSON.")

    def handle(self, *args, **opts):
        try:
            campaign = Campaign.objects.get(slug=opts["campaign"])
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {opts['campaign']!r}") from None
        if opts["base"] and not Path(opts["base"]).is_dir():
            raise CommandError(f"--base {opts['base']} is not a directory")
        if opts["epochs"] is not None and opts["epochs"] < 1:
            raise CommandError("--epochs must be at least 1")
        if not 0 <= opts["val_fraction"] < 1:
            raise CommandError("--val-fraction must be in [0, 1)")
        extra = []
        if opts["prm800k"]:
            from selector.training import load_prm800k_examples

            try:
                extra = load_prm800k_examples(opts["prm800k"])
            except (OSError, ValueError, KeyError) as exc:
                raise CommandError(f"--prm800k {opts['prm800k']}: {exc}") from None

        if opts["resume"] is not None:
            checkpoint = Checkpoint.objects.filter(pk=opts["resume"], campaign=campaign).first()
            if checkpoint is None:
                raise CommandError(f"no checkpoint {opts['resume']} in campaign {campaign.slug}")
            if checkpoint.status not in (Checkpoint.Status.TRAINING, Checkpoint.Status.FAILED):
                raise CommandError(f"checkpoint {checkpoint.pk} is {checkpoint.status}")
            checkpoint.resume_training()
        else:
            checkpoint = new_checkpoint(campaign, prefix="manual", generation=None)
        bar = tqdm(unit="batch", disable=None, file=self.stderr)

        def progress(epoch: int, batch: int, info: dict) -> None:
            bar.total = info["batches"]
            bar.set_description(f"epoch {epoch + 1}")
            bar.n = batch
            bar.set_postfix(loss=f"{info['loss']:.3f}")
            bar.refresh()

        try:
            checkpoint = loop.train_checkpoint(
                checkpoint.pk,
                base=opts["base"],
                epochs=opts["epochs"],
                extra_examples=extra,
                val_fraction=opts["val_fraction"],
                device=opts["device"],
                done_status=Checkpoint.Status.READY,
                progress=progress,
            )
        except (loop.LoopError, ValueError, OSError) as exc:
            checkpoint.fail(f"{type(exc).__name__}: {exc}")
            raise CommandError(str(exc)) from None
        except BaseException as exc:
            # Interrupted (Ctrl-C) or crashed: the epochs done so far stay resumable.
            checkpoint.fail(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            bar.close()

        record = checkpoint.training_record
        if opts["json"]:
            payload = {"checkpoint": checkpoint.pk, "path": checkpoint.path, **record}
            self.stdout.write(json.dumps(payload, indent=2, default=str))
            return
        final = record["history"][-1]["val_loss"] if record.get("history") else None
        self.stdout.write(
            f"Trained checkpoint {checkpoint.pk} ({checkpoint.name}) at {checkpoint.path}: "
            f"{record['n_train_examples']} train / {record['n_val_examples']} validation "
            f"examples ({record['n_train_labels']} / {record['n_val_labels']} step labels, "
            f"{record['held_out_problems']} problems held out), {record['epochs_completed']} "
            f"epochs on {record['device']} in {record['wall_time_s']:.1f} s; "
            f"validation loss {_fmt(record.get('initial_val_loss'))} → {_fmt(final)}."
        )


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4f}"
