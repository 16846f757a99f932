"""Ground truth you can trust before you select: problems whose ground-truth answer looks
broken are flagged for the lead and held out of selection's wrong-answer phase.

A problem becomes `suspect` when

- every one of its graded samples disagrees with the ground truth, once it has at least
  `MIN_GRADED` of them (with fewer, "all wrong" is as likely a hard problem as a broken
  answer). `flag_disagreeing` checks a campaign: after every sample import, and again inside
  `open_generation` before it picks (so generated samples and new scores are covered);
- or a labeler ends a task as `bad_problem` (`Label.finish` reports it).

While suspect, its samples are selectable but never count as wrong (`counts_as_wrong`, the
one rule that both pool loaders use). The lead confirms the ground truth or fixes it in the
admin (`fix_ground_truth` regrades the problem's samples); both make it `confirmed`, which
no later check or report overturns.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.db.models import Count, Q

from annotate.models import Campaign, Problem, Sample

#: Graded samples a problem needs before "every sample disagrees" means anything.
MIN_GRADED = 4
#: Sample answers named in the note the lead reads.
ANSWERS_SHOWN = 3


def flag_disagreeing(
    campaign: Campaign, verdicts: Mapping[int, tuple[int, int]] | None = None
) -> int:
    """Flag the campaign's `ok` problems whose ≥ MIN_GRADED graded samples are all wrong;
    returns how many were flagged. `verdicts`: (graded, correct) per problem id over the
    campaign's answered samples, counted already (the pool load's), else counted here."""
    if verdicts is None:
        # Counted on the samples' side over answered ones (only those are graded): the pool's
        # covering index then answers it, not a scan of every sample's steps (12M at scale).
        verdicts = {
            pk: (graded, correct)
            for pk, graded, correct in Sample.objects.for_campaign(campaign)
            .answered()
            .values("problem_id")
            .annotate(
                graded=Count("pk", filter=Q(is_correct__isnull=False)),
                correct=Count("pk", filter=Q(is_correct=True)),
            )
            .values_list("problem_id", "graded", "correct")
        }
    ok = set(
        campaign.problems.filter(ground_truth_status=Problem.GroundTruth.OK).values_list(
            "pk", flat=True
        )
    )
    candidates = [
        (pk, graded)
        for pk, (graded, correct) in verdicts.items()
        if graded >= MIN_GRADED and correct == 0 and pk in ok
    ]
    flagged = 0
    for pk, graded in candidates:
        answers = (
            Sample.objects.filter(problem_id=pk, is_correct=False)
            .values("answer")
            .annotate(n=Count("pk"))
            .order_by("-n", "answer")
            .values_list("answer", "n")[:ANSWERS_SHOWN]
        )
        common = "; ".join(f"{a} ×{n}" for a, n in answers)
        note = f"All {graded} graded samples disagree with the ground truth (theirs: {common})."
        flagged += Problem.objects.filter(pk=pk).flag_suspect(note)
    return flagged


def confirm(problems, by: str) -> int:
    """The lead vouches for these problems' ground truths as they are."""
    return problems.confirm_ground_truth(f"Ground truth confirmed by {by}.")


@transaction.atomic
def fix_ground_truth(problem: Problem, answer: str, by: str) -> int:
    """Replace the ground-truth answer, regrade the problem's answered samples and confirm
    it; returns how many samples changed verdict."""
    from selector.grading import grade_many

    old = Problem.objects.values_list("ground_truth_answer", flat=True).get(pk=problem.pk)
    problem.ground_truth_answer = answer
    problem.ground_truth_status = Problem.GroundTruth.CONFIRMED
    problem.ground_truth_note = f"Ground truth fixed by {by} (was {old!r})."
    problem.save(update_fields=["ground_truth_answer", "ground_truth_status", "ground_truth_note"])
    samples = list(problem.samples.filter(answer__isnull=False).only("pk", "answer", "is_correct"))
    verdicts = grade_many([(s.answer, answer) for s in samples])
    changed = [s for s, v in zip(samples, verdicts, strict=True) if s.is_correct is not v]
    for sample, verdict in zip(samples, verdicts, strict=True):
        sample.is_correct = verdict
    Sample.objects.bulk_update(changed, ["is_correct"], batch_size=1000)
    return len(changed)
