from __future__ import annotations

from django.db import models


class ScoringChunk(models.Model):
    """A slice of a generation's pool (a few problems) scored by one `gpu`-queue task.

    Chunks make scoring resumable: a killed worker loses at most its unfinished sub-batch, and
    the generation moves on to selection exactly once, when the last chunk is marked done. A
    chunk whose heartbeat stopped is sent again by beat's sweep within minutes, not after the
    broker's visibility timeout.
    """

    generation = models.ForeignKey(
        "annotate.Generation", on_delete=models.CASCADE, related_name="scoring_chunks"
    )
    index = models.PositiveIntegerField()
    problem_ids = models.JSONField()
    sample_count = models.PositiveIntegerField(default=0)
    # Samples imported after the chunks were planned wait for the next generation.
    max_sample_id = models.BigIntegerField(null=True, blank=True)
    done = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set when a task starts the chunk and after every sub-batch; None while it waits in the
    # queue. A started chunk silent too long lost its worker (`requeue_stale_chunks`).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["generation", "index"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "index"], name="chunk_unique_index")
        ]
        indexes = [
            # "Is any chunk of this generation still to do?" after every finished chunk.
            models.Index(
                fields=["generation"], condition=models.Q(done=False), name="chunk_pending"
            )
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of generation {self.generation_id}"
