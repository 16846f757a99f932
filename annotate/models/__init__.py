"""The annotation domain: campaigns, problems, samples, scores, checkpoints, generations,
assignments and labels."""

from annotate.models.alternative import Alternative
from annotate.models.assignment import Assignment
from annotate.models.audit import AuditEvent
from annotate.models.campaign import Campaign
from annotate.models.checkpoint import Checkpoint, Score
from annotate.models.generation import Generation, Selection
from annotate.models.label import GoldStandard, Label, StepRating
from annotate.models.label_source import LabelSource, SourceLabel
from annotate.models.outbox import QueuedTask
from annotate.models.problem import Problem, Sample
from annotate.models.quality import QualitySettings, Review, ScreeningResult

__all__ = [
    "Alternative",
    "Assignment",
    "AuditEvent",
    "Campaign",
    "Checkpoint",
    "Generation",
    "GoldStandard",
    "Label",
    "LabelSource",
    "Problem",
    "QualitySettings",
    "QueuedTask",
    "Review",
    "Sample",
    "Score",
    "ScreeningResult",
    "Selection",
    "SourceLabel",
    "StepRating",
]
