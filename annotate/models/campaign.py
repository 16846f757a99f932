from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q

from selector.generation.alternatives import DEFAULT_ALTERNATIVES
from selector.generation.config import BACKENDS, GeneratorConfig
from selector.generation.prompt import DEFAULT_PROMPT, SPLIT_RULES
from selector.promotion import metric_choices

#: The control arm's share for campaigns created through the admin or the API; the column's
#: own default stays 0 so campaigns made in code select exactly as DESIGN's rules say.
DEFAULT_UNIFORM_FRACTION = 0.1


# Field validators speak the field's language next to the field; the CHECK constraints below
# stay as the database's guarantee (and are skipped once a field already has its error).
def share(label: str) -> list:
    message = f"{label} must be between 0 and 1."
    return [MinValueValidator(0, message), MaxValueValidator(1, message)]


def at_least(minimum: int, label: str) -> MinValueValidator:
    return MinValueValidator(minimum, f"{label} must be at least {minimum}.")


def default_prompt() -> dict:
    """The generator's default prompt template (selector.generation.prompt), as JSON."""
    return DEFAULT_PROMPT.to_dict()


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
        "K",
        default=4,
        validators=[at_least(1, "K")],
        help_text="Samples selected per problem (per_problem) or in total (global).",
    )
    wrong_fraction = models.FloatField(
        default=0.8,
        validators=share("Wrong fraction"),
        help_text="Share of K reserved for wrong-answer samples (0–1).",
    )
    max_per_problem = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[at_least(1, "Max per problem")],
        help_text="Cap per problem; empty means no cap.",
    )
    uniform_fraction = models.FloatField(
        default=0.0,
        help_text="Share of every generation's K drawn uniformly at random from the pool: the "
        "control arm that shows whether active selection pays (new campaigns get "
        f"{DEFAULT_UNIFORM_FRACTION}).",
    )
    qc_rate = models.FloatField(
        "QC rate",
        default=0.0,
        validators=share("QC rate"),
        help_text="Share of tasks served as gold quality-control items.",
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, validators=[at_least(1, "Overlap")], help_text="Labelers per sample."
    )
    lease_minutes = models.PositiveIntegerField(
        default=30, validators=[at_least(1, "Lease minutes")]
    )
    score_aggregation = models.CharField(
        max_length=10, choices=Aggregation, default=Aggregation.PRODUCT
    )
    neutral_is_positive = models.BooleanField(
        default=True, help_text="Step score = 1 − P(negative) when set, else P(positive)."
    )
    screening_required = models.BooleanField(
        default=False, help_text="New labelers must pass the screening set first."
    )
    screening_pass_mark = models.FloatField(default=0.75, validators=share("Screening pass mark"))
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
    retrain_base = models.CharField(
        max_length=500,
        blank=True,
        help_text="A local Hugging Face model directory every retraining starts from (an "
        "encoder such as all-MiniLM-L6-v2, a decoder, or a published PRM). Empty: continue "
        "from the active native checkpoint, else a small model built from scratch.",
    )
    promotion_metric = models.CharField(
        max_length=20,
        choices=metric_choices(),
        default="val_loss",
        help_text="What a new checkpoint must beat the active one on, on the same held-out data.",
    )
    promotion_min_delta = models.FloatField(
        default=0.0, help_text="Margin by which the new checkpoint must be better."
    )
    # --- generator (selector.generation; snapshotted on each Generation) ---
    generator_backend = models.CharField(
        "backend",
        max_length=10,
        choices=[(name, name) for name in BACKENDS],
        default="openai",
        help_text="openai: an OpenAI-compatible server (vLLM, SGLang, llama.cpp); "
        "local: a Hugging Face causal-LM directory, run on the gpu queue.",
    )
    generator_base_url = models.CharField(
        "base URL", max_length=500, blank=True, help_text="e.g. http://gpu-host:8000/v1"
    )
    generator_model = models.CharField(
        "model",
        max_length=500,
        blank=True,
        help_text="The served model's name (openai) or the model directory (local); "
        "empty: no generator.",
    )
    generator_api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        blank=True,
        help_text="Name of the environment variable holding the API key (never the key).",
    )
    generator_n = models.PositiveIntegerField(
        "N per problem",
        default=0,
        help_text="Solutions generated per train problem at the start of each generation; "
        "0 = import only (PRM800K: 1000).",
    )
    generator_temperature = models.FloatField("temperature", default=1.0)
    generator_top_p = models.FloatField("top-p", default=1.0)
    generator_max_tokens = models.PositiveIntegerField("max tokens", default=1024)
    generator_stop = models.JSONField(
        "stop sequences", default=list, blank=True, help_text='A JSON list, e.g. ["\\n\\n\\n"].'
    )
    generator_prompt = models.JSONField(
        "prompt template",
        default=default_prompt,
        blank=True,
        help_text="system, few_shot ([problem, solution] pairs), user and next_step "
        "({problem}, {steps}); empty = the default.",
    )
    generator_split_rule = models.CharField(
        "step splitting",
        max_length=20,
        choices=[(name, name.replace("_", " ")) for name in SPLIT_RULES],
        default="blank_line",
    )
    generator_concurrency = models.PositiveSmallIntegerField(
        "concurrency", default=8, help_text="Requests in flight (openai) or batch size (local)."
    )
    alternatives = models.PositiveSmallIntegerField(
        default=DEFAULT_ALTERNATIVES,
        help_text="Alternatives to the erroneous step proposed after a found_error, for the "
        "labeler to rate (PRM800K phase 2); 0 = off. Needs a generator model.",
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

    def generator_settings(self) -> dict:
        """The generator settings as a frozen snapshot (`GeneratorConfig.to_dict`); the API
        key's variable name only, never the key."""
        return self.generator_config().to_dict()

    def generator_config(self) -> GeneratorConfig:
        """Raises ValueError on settings the generator refuses."""
        return GeneratorConfig.from_dict(
            {
                "backend": self.generator_backend,
                "base_url": self.generator_base_url,
                "model": self.generator_model,
                "api_key_env": self.generator_api_key_env,
                "n": self.generator_n,
                "temperature": self.generator_temperature,
                "top_p": self.generator_top_p,
                "max_tokens": self.generator_max_tokens,
                "stop": list(self.generator_stop or []),
                "prompt": self.generator_prompt or default_prompt(),
                "split_rule": self.generator_split_rule,
                "concurrency": self.generator_concurrency,
            }
        )

    @property
    def alternatives_wanted(self) -> int:
        """Alternatives to propose after a found_error: 0 without a generator model."""
        return self.alternatives if self.generator_model else 0

    def clean(self) -> None:
        if self.generator_stop and not (
            isinstance(self.generator_stop, list)
            and all(isinstance(s, str) for s in self.generator_stop)
        ):
            raise ValidationError({"generator_stop": "A JSON list of strings."})
        try:
            self.generator_config()
        except (TypeError, ValueError, KeyError) as exc:
            raise ValidationError(f"Generator settings: {exc}") from None
        if self.generator_n and not self.generator_model:
            raise ValidationError({"generator_model": "N > 0 needs a model."})
        if self.generator_n and self.generator_backend == "openai" and not self.generator_base_url:
            raise ValidationError({"generator_base_url": "The openai backend needs a base URL."})

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

    @transaction.atomic
    def deactivate_checkpoint(self) -> None:
        """No checkpoint scores the pool any more (the next generation bootstraps one)."""
        if self.active_checkpoint is not None:
            self.active_checkpoint.deactivate()
        self.active_checkpoint = None
        self.save(update_fields=["active_checkpoint", "updated_at"])
