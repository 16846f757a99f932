"""Tasks the web side queued while the broker could not take them (an outbox)."""

from __future__ import annotations

from django.db import models


class QueuedTask(models.Model):
    """A Celery task by name, written in the transaction that needs it and deleted once the
    broker took it (`annotate.dispatch`): a broker that is down, or a web process killed
    between the commit and the send, delays the task but never loses it."""

    name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    queue = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name}{tuple(self.args)} on {self.queue}"
