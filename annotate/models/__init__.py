"""The annotation domain: campaigns, problems, samples, scores, checkpoints, generations,
assignments and labels."""

from annotate.models.alternative import Alternative
from annotate.models.assignment import Assignment
from annotate.models.campaign import Campaign
from annotate.models.checkpoint import Checkpoint, Score
from annotate.models.generation import Generation, Selection
from annotate.models.label import GoldStandard, Label, StepRating
from annotate.models.problem import Problem, Sample
from annotate.models.quality import ScreeningResult

__all__ = [
    "Alternative",
    "Assignment",
    "Campaign",
    "Checkpoint",
    "Generation",
    "GoldStandard",
    "Label",
    "Problem",
    "Sample",
    "Score",
    "ScreeningResult",
    "Selection",
    "StepRating",
]
