"""Ground truth you can trust before you select: a problem whose every sample disagrees with
its ground truth (or that a labeler reports as bad) is flagged for the lead and held out of
selection's wrong-answer phase until a lead confirms or fixes it."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from annotate import generations
from annotate.ground_truth import MIN_GRADED, flag_disagreeing
from annotate.io import import_problems, import_samples
from annotate.models import Problem, Sample
from tests.factories import make_task

pytestmark = pytest.mark.django_db

SUSPECT, OK, CONFIRMED = (
    Problem.GroundTruth.SUSPECT,
    Problem.GroundTruth.OK,
    Problem.GroundTruth.CONFIRMED,
)


def line(uid: str, j: int, answer: str, score: float) -> str:
    steps = [f"Work {j} on {uid}.", f"# Answer\n\n{answer}"]
    return json.dumps(
        {"id": f"{uid}/{j}", "unique_id": uid, "steps": steps, "verifier_score": score}
    )


@pytest.fixture
def world(campaign):
    """`broken`: ground truth "4:30p.." and five confident samples answering 4:30 p.m.;
    `hard`: ground truth 7, four wrong samples and one right; `few`: three wrong samples."""
    import_problems(
        [
            json.dumps(
                {"unique_id": "broken", "problem": "When?", "ground_truth_answer": "4:30p.."}
            ),
            json.dumps({"unique_id": "hard", "problem": "How many?", "ground_truth_answer": "7"}),
            json.dumps({"unique_id": "few", "problem": "Which?", "ground_truth_answer": "3"}),
        ],
        campaign,
    )
    lines = [line("broken", j, "4:30 \\text{ p.m.}", 0.9 - j / 100) for j in range(5)]
    lines += [line("hard", j, "8" if j else "7", 0.5 - j / 100) for j in range(5)]
    lines += [line("few", j, "4", 0.3 - j / 100) for j in range(3)]
    summary = import_samples(lines, campaign)
    return campaign, summary


def status(uid: str) -> tuple[str, str]:
    return tuple(
        Problem.objects.values_list("ground_truth_status", "ground_truth_note").get(unique_id=uid)
    )


def test_import_flags_the_problem_every_sample_disagrees_with(world):
    _, summary = world
    assert summary.details["suspect ground truths"] == 1
    flagged, note = status("broken")
    assert flagged == SUSPECT
    assert "All 5 graded samples disagree" in note and "4:30 \\text{ p.m.} ×5" in note
    assert status("hard")[0] == OK  # one right sample: a hard problem, not a broken answer
    assert status("few")[0] == OK  # fewer than MIN_GRADED graded samples prove nothing
    assert MIN_GRADED == 4


def test_suspect_samples_never_fill_the_wrong_phase_on_either_pool_loader(world, monkeypatch):
    campaign, _ = world
    campaign.strategy, campaign.k, campaign.wrong_fraction = "global", 3, 1.0
    campaign.save()
    for loader in ("copy", "orm"):
        if loader == "orm":  # the general path, as when a steps_hash is malformed
            monkeypatch.setattr(generations, "_load_pool_copy", _odd_rows)
        pool = generations.load_pool(campaign, None)
        wrong = dict(zip(pool.sample.tolist(), pool.wrong.tolist(), strict=True))
        broken = set(
            Sample.objects.filter(problem__unique_id="broken").values_list("pk", flat=True)
        )
        assert broken <= wrong.keys(), "still selectable"
        assert not any(wrong[pk] for pk in broken), loader
        picks = generations.preview_selection(campaign)
        picked = set(
            Sample.objects.filter(pk__in=picks.sample.tolist()).values_list(
                "problem__unique_id", flat=True
            )
        )
        assert picked == {"hard"}, loader  # the three best wrong answers, none of them "broken"


def _odd_rows(*args, **kwargs):
    raise generations._OddRows


@pytest.mark.parametrize("loader", ["copy", "orm"])
def test_open_generation_flags_what_broke_since_the_last_check_before_it_picks(
    world, monkeypatch, loader
):
    campaign, _ = world
    campaign.strategy, campaign.k, campaign.wrong_fraction = "global", 3, 1.0
    campaign.save()
    Problem.objects.filter(unique_id="broken").update(ground_truth_status=OK)  # not checked yet
    if loader == "orm":
        monkeypatch.setattr(generations, "_load_pool_copy", _odd_rows)
    _, preview = generations.open_generation(campaign)
    assert status("broken")[0] == SUSPECT
    picked = Sample.objects.filter(pk__in=preview.sample.tolist())
    assert set(picked.values_list("problem__unique_id", flat=True)) == {"hard"}, loader


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL's packed loader counts verdicts"
)
def test_the_packed_pool_load_counts_what_flagging_counts(world):
    campaign, _ = world
    Sample.objects.filter(problem__unique_id="few").update(is_correct=None)  # not graded
    expected = {}
    for problem, verdict in Sample.objects.filter(answer__isnull=False).values_list(
        "problem_id", "is_correct"
    ):
        graded, correct = expected.get(problem, (0, 0))
        expected[problem] = (graded + (verdict is not None), correct + (verdict is True))
    assert generations.load_pool(campaign, None).verdicts == expected


def test_a_confirmed_ground_truth_counts_again_and_stays_confirmed(world, lead, client):
    campaign, _ = world
    client.force_login(lead)
    broken = Problem.objects.get(unique_id="broken")
    url = reverse("admin:annotate_problem_changelist")
    listed = client.get(url, {"ground_truth_status__exact": SUSPECT})
    assert [p.unique_id for p in listed.context["cl"].result_list] == ["broken"]
    assert "All 5 graded samples disagree" in listed.content.decode()
    client.post(url, {"action": "confirm_ground_truth", "_selected_action": [broken.pk]})
    assert status("broken") == (CONFIRMED, "Ground truth confirmed by lead.")
    assert flag_disagreeing(campaign) == 0  # no later check overturns the lead
    pool = generations.load_pool(campaign, None)
    assert pool.wrong[pool.problem == broken.pk].tolist() == [True] * 5


def test_fixing_the_answer_in_the_admin_regrades_its_samples(world, lead, client):
    client.force_login(lead)
    broken = Problem.objects.get(unique_id="broken")
    url = reverse("admin:annotate_problem_change", args=[broken.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "id"}
    data.update(campaign=broken.campaign_id, ground_truth_answer="\\text{4:30 p.m.}")
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    flagged, note = status("broken")
    assert flagged == CONFIRMED and "fixed by lead" in note and "4:30p.." in note
    assert set(broken.samples.values_list("is_correct", flat=True)) == {True}


def test_a_bad_problem_report_flags_the_problem_for_the_lead(labeler, campaign, client):
    assignment, _ = make_task(labeler, campaign)
    client.force_login(labeler)
    response = client.post(reverse("task-finish", args=[assignment.pk]), {"reason": "bad_problem"})
    assert response.status_code in (200, 302)
    problem = assignment.sample.problem
    problem.refresh_from_db()
    assert problem.ground_truth_status == SUSPECT
    assert problem.ground_truth_note == (
        f"Labeler labeler reported a bad problem (sample {assignment.sample_id})."
    )


def test_give_up_flags_nothing(labeler, campaign, client):
    assignment, _ = make_task(labeler, campaign)
    client.force_login(labeler)
    client.post(reverse("task-finish", args=[assignment.pk]), {"reason": "give_up"})
    assert Problem.objects.suspect().count() == 0


def test_select_tells_the_lead_what_was_held_out(world):
    campaign, _ = world
    out = io.StringIO()
    call_command("select", "--campaign", campaign.slug, "--dry-run", stdout=out)
    assert "1 problem(s) have a suspect ground truth" in out.getvalue()


def test_the_api_shows_each_problems_ground_truth_status(world, lead, client):
    campaign, _ = world
    client.force_login(lead)
    url = f"/api/v1/campaigns/{campaign.slug}/problems/"
    listed = {p["unique_id"]: p for p in client.get(url).json()["results"]}
    assert listed["broken"]["ground_truth_status"] == SUSPECT
    assert listed["hard"]["ground_truth_status"] == OK
    detail = client.get(f"{url}{listed['broken']['id']}/").json()
    assert "All 5 graded samples disagree" in detail["ground_truth_note"]
