from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q

from selector.promotion import metric_choices

#: The control arm's share for campaigns created through the admin or the API; the column's
#: own default stays 0 so campaigns made in code select exactly as DESIGN's rules say.
DEFAULT_UNIFORM_FRACTION = 0.1


class Campaign(models.Model):
    """A labeling effort over one pool of problems and samples, with its selection settings."""

    class Strategy(models.TextChoices):
        PER_PROBLEM = "per_problem", "K per problem"
        GLOBAL = "global", "K in total"

    class Aggregation(models.TextChoices):
        PRODUCT = "product", "Product of step scores"
        MIN = "min", "Minimum step score"

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    guidelines = models.TextField(blank=True, help_text="Shown to labelers above every task.")
    samples_per_problem = models.PositiveIntegerField(default=1000)
    strategy = models.CharField(max_length=20, choices=Strategy, default=Strategy.PER_PROBLEM)
    k = models.PositiveIntegerField(
        "K", default=4, help_text="Samples selected per problem (per_problem) or in total (global)."
    )
    wrong_fraction = models.FloatField(
        default=0.8, help_text="Share of K reserved for wrong-answer samples (0–1)."
    )
    max_per_problem = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cap per problem; empty means no cap."
    )
    uniform_fraction = models.FloatField(
        default=0.0,
        help_text="Share of every generation's K drawn uniformly at random from the pool: the "
        "control arm that shows whether active selection pays (new campaigns get "
        f"{DEFAULT_UNIFORM_FRACTION}).",
    )
    qc_rate = models.FloatField(
        "QC rate", default=0.0, help_text="Share of tasks served as gold quality-control items."
    )
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Labelers per sample.")
    lease_minutes = models.PositiveIntegerField(default=30)
    score_aggregation = models.CharField(
        max_length=10, choices=Aggregation, default=Aggregation.PRODUCT
    )
    neutral_is_positive = models.BooleanField(
        default=True, help_text="Step score = 1 − P(negative) when set, else P(positive)."
    )
    screening_required = models.BooleanField(
        default=False, help_text="New labelers must pass the screening set first."
    )
    screening_pass_mark = models.FloatField(default=0.75)
    active_checkpoint = models.ForeignKey(
        "annotate.Checkpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    labelers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="labeling_campaigns"
    )
    # --- retraining loop (workers.loop) ---
    auto_retrain = models.BooleanField(
        default=True,
        help_text="Retrain automatically when the open generation reaches its label target.",
    )
    retrain_label_target = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Finished labels of the open generation that trigger retraining; "
        "empty means every one of its assignments.",
    )
    retrain_schedule = models.ForeignKey(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A beat task that also retrains this campaign on a schedule "
        "(task workers.loop_tasks.retrain_campaign); edit its timing under Periodic tasks.",
    )
    retrain_epochs = models.PositiveSmallIntegerField(default=3)
    promotion_metric = models.CharField(
        max_length=20,
        choices=metric_choices(),
        default="val_loss",
        help_text="What a new checkpoint must beat the active one on, on the same held-out data.",
    )
    promotion_min_delta = models.FloatField(
        default=0.0, help_text="Margin by which the new checkpoint must be better."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(wrong_fraction__gte=0) & Q(wrong_fraction__lte=1),
                name="campaign_wrong_fraction_0_1",
            ),
            models.CheckConstraint(
                condition=Q(uniform_fraction__gte=0) & Q(uniform_fraction__lte=1),
                name="campaign_uniform_fraction_0_1",
            ),
            models.CheckConstraint(
                condition=Q(qc_rate__gte=0) & Q(qc_rate__lte=1), name="campaign_qc_rate_0_1"
            ),
            models.CheckConstraint(
                condition=Q(screening_pass_mark__gte=0) & Q(screening_pass_mark__lte=1),
                name="campaign_screening_pass_mark_0_1",
            ),
            models.CheckConstraint(condition=Q(k__gte=1), name="campaign_k_positive"),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="campaign_overlap_positive"),
            models.CheckConstraint(
                condition=Q(lease_minutes__gte=1), name="campaign_lease_minutes_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_per_problem__isnull=True) | Q(max_per_problem__gte=1),
                name="campaign_max_per_problem_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    def selection_params(self) -> dict:
        """The selection settings as a frozen snapshot for a generation."""
        return {
            "strategy": self.strategy,
            "k": self.k,
            "wrong_fraction": self.wrong_fraction,
            "max_per_problem": self.max_per_problem,
        }

    def ownership_error(self, thing: models.Model) -> str | None:
        """Why a checkpoint or generation cannot serve this campaign (it belongs to another
        one), else None; a checkpoint of no campaign serves any."""
        if thing.campaign_id not in (None, self.pk):
            return f"{thing._meta.model_name} {thing.pk} belongs to another campaign"
        return None

    def next_generation_number(self) -> int:
        last = self.generations.newest()
        return 0 if last is None else last.number + 1

    @transaction.atomic
    def activate(self, checkpoint) -> None:
        """Make `checkpoint` (ready or active) the one that scores this campaign's pool."""
        previous = self.active_checkpoint
        if previous is not None and previous.pk != checkpoint.pk:
            previous.deactivate()
        if not checkpoint.make_active():
            raise ValueError(f"a {checkpoint.status} checkpoint cannot be activated")
        self.active_checkpoint = checkpoint
        self.save(update_fields=["active_checkpoint", "updated_at"])
