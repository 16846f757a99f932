"""Finishing a label directly, the way the labeling page stores it (no rules checked)."""

from django.utils import timezone

from annotate.models import Assignment, Label, StepRating


def finish(assignment: Assignment, ratings: list, finish_reason: str) -> Label:
    """Rate and finish an assignment's label the way the labeling page stores it."""
    label = Label.for_assignment(assignment)
    StepRating.objects.bulk_create(
        StepRating(label=label, step=i, rating=r) for i, r in enumerate(ratings)
    )
    now = timezone.now()
    label.finish_reason = finish_reason
    label.finished_at = now
    label.save(update_fields=["finish_reason", "finished_at", "updated_at"])
    assignment.state = Assignment.State.SUBMITTED
    assignment.submitted_at = now
    assignment.save(update_fields=["state", "submitted_at"])
    return label
