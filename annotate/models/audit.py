"""The audit trail: who changed what a lead controls, when, and through which door.

One row per lead action (selection settings, a generation started or closed, a checkpoint
activated, a label edited or a review resolved), written by the admin, the API, the web
pages and the management commands where the action happens. A command has no logged-in
user: `actor` is None and `actor_name` the operating-system account that ran it.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

#: The campaign fields that decide what gets selected (the admin's "Selection" fieldset).
SELECTION_FIELDS = (
    "samples_per_problem",
    "strategy",
    "k",
    "wrong_fraction",
    "max_per_problem",
    "uniform_fraction",
    "score_aggregation",
    "neutral_is_positive",
    "active_checkpoint",
)


def os_user() -> str:
    """The operating-system account running this process (a command's actor)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return "unknown"


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        CAMPAIGN_SETTINGS = "campaign_settings", "changed selection settings"
        GENERATION_STARTED = "generation_started", "started a generation"
        GENERATION_CLOSED = "generation_closed", "closed a generation"
        CHECKPOINT_ACTIVATED = "checkpoint_activated", "activated a checkpoint"
        LABEL_EDITED = "label_edited", "edited a label"
        LABEL_RESOLVED = "label_resolved", "resolved a review"

    class Via(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        WEB = "web"
        COMMAND = "command"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text so the trail still names a user deleted since (or a command's OS account).
    actor_name = models.CharField(max_length=150)
    via = models.CharField(max_length=10, choices=Via.choices)
    action = models.CharField(max_length=30, choices=Action.choices)
    campaign = models.ForeignKey(
        "annotate.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=200, help_text="What was acted on, e.g. “generation 3”.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["action", "-at"], name="audit_action_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.get_action_display()}"

    @classmethod
    def record(
        cls,
        actor: Any,
        via: str,
        action: str,
        target: str,
        *,
        campaign: Any = None,
        **detail: Any,
    ) -> AuditEvent:
        """Write one event; `actor` is the acting user, or None for a command (its OS user)."""
        if actor is not None and not actor.is_authenticated:
            actor = None
        name = actor.get_username() if actor is not None else f"os:{os_user()}"
        return cls.objects.create(
            actor=actor,
            actor_name=name,
            via=via,
            action=action,
            campaign=campaign,
            target=target[:200],
            detail=detail,
        )
