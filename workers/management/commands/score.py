"""Score a campaign's selection pool with a checkpoint, in this process (a GPU box runs it).

`score` + `select --scores active` run a whole generation from the command line; the admin's
"Start next generation" does the same through the `gpu` and `default` Celery queues.
"""

from django.core.management.base import CommandError
from tqdm import tqdm

from annotate.generations import pool_samples
from annotate.management.command import StepwiseCommand
from annotate.models import Campaign, Checkpoint
from workers import pipeline


class Command(StepwiseCommand):
    help = "Score the campaign's unscored pool with a checkpoint (default: the active one)."
    runtime = (
        "A run takes about a minute for the demo's 800 samples with the bootstrap PRM on CPU "
        "(the demo's own estimate); docs/scoring.md measures tokens/s and sizes GPU runs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--campaign", required=True, metavar="SLUG", help="Campaign whose pool to score."
        )
        parser.add_argument(
            "--checkpoint",
            type=int,
            metavar="ID",
            help="Checkpoint id; default the campaign's active one, bootstrapped if none.",
        )

    def handle(self, *args, campaign: str, checkpoint: int | None, **options):
        try:
            camp = Campaign.objects.get(slug=campaign)
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {campaign!r}") from None
        if checkpoint is not None:
            ckpt = Checkpoint.objects.filter(pk=checkpoint).first()
            if ckpt is None:
                raise CommandError(f"no checkpoint {checkpoint}")
            if problem := camp.ownership_error(ckpt):
                raise CommandError(problem)
        else:
            if camp.active_checkpoint_id is None:
                self.stderr.write("No checkpoint yet: bootstrapping one from the campaign's text.")
            ckpt = pipeline.ensure_active_checkpoint(camp)
        sample_ids = list(
            pool_samples(camp, unscored_by=ckpt).order_by("pk").values_list("pk", flat=True)
        )
        with tqdm(total=len(sample_ids), unit="sample", disable=None, file=self.stderr) as bar:
            scored = pipeline.score_samples(camp, ckpt, sample_ids, on_batch=bar.update)
        pool = pool_samples(camp).count()
        self.stdout.write(
            f"Scored {scored} samples of campaign {camp.slug} with checkpoint {ckpt.pk} "
            f"({ckpt.name}); {pool - len(sample_ids)} of the pool of {pool} were scored before."
        )
