"""The lead dashboard: who may see it, what it shows, and a query count that stays fixed."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotate import dashboard
from annotate.models import Assignment, Generation, GoldStandard, Label, Problem, ScreeningResult
from tests.factories import finish

QC = GoldStandard.Purpose.QUALITY_CONTROL


@pytest.fixture
def urls(campaign):
    return [reverse("dashboard"), reverse("dashboard-campaign", args=[campaign.slug])]


def test_anonymous_goes_to_login(client, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
        assert f"next={url}" in response.url


def test_labeler_is_forbidden(client, labeler, urls):
    client.force_login(labeler)
    for url in urls:
        assert client.get(url).status_code == 403


def test_lead_sees_both_pages(client, lead, campaign, urls):
    client.force_login(lead)
    index = client.get(urls[0])
    assert index.status_code == 200
    assert f'data-campaign="{campaign.slug}"' in index.content.decode()
    page = client.get(urls[1])
    assert page.status_code == 200
    assert "Assignments per generation" in page.content.decode()


def test_unknown_campaign_is_404(client, lead):
    client.force_login(lead)
    assert client.get(reverse("dashboard-campaign", args=["nope"])).status_code == 404


def test_post_is_not_allowed(client, lead, urls):
    client.force_login(lead)
    assert client.post(urls[1]).status_code == 405


def _people(n: int, prefix: str):
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"{prefix}{i}") for i in range(n)
    )
    return list(get_user_model().objects.filter(username__startswith=prefix).order_by("id"))[
        : len(users)
    ]


def _populate(campaign, make_sample, prefix: str, n_people: int, n_generations: int):
    """Generations with regular and QC work, finished labels, screening verdicts."""
    people = _people(n_people, prefix)
    campaign.labelers.add(*people)
    start = Generation.objects.filter(campaign=campaign).count()
    for number in range(start, start + n_generations):
        generation = Generation.objects.create(
            campaign=campaign, number=number, status=Generation.Status.OPEN
        )
        for person in people:
            sample = make_sample(2)
            done = Assignment.objects.create(
                generation=generation, sample=sample, labeler=person, state="in_progress"
            )
            finish(done, [1, -1], "found_error")
            Assignment.objects.create(generation=generation, sample=make_sample(2))
            gold = GoldStandard.objects.create(
                sample=make_sample(2), purpose=QC, ratings=[1, 1], finish_reason="solution"
            )
            qc = Assignment.objects.create(
                generation=generation,
                sample=gold.sample,
                labeler=person,
                kind=Assignment.Kind.QUALITY_CONTROL,
                state="in_progress",
            )
            finish(qc, [1, 1], "solution")
    for person in people[: n_people // 2]:
        ScreeningResult.objects.create(
            campaign=campaign, labeler=person, status="failed", agreement=0.25, items=4
        )
    return people


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_data(
    client, lead, campaign, make_sample, django_assert_max_num_queries
):
    client.force_login(lead)
    url = reverse("dashboard-campaign", args=[campaign.slug])
    _populate(campaign, make_sample, "few", n_people=1, n_generations=1)
    small = _count_queries(client, url)
    _populate(campaign, make_sample, "many", n_people=8, n_generations=4)
    large = _count_queries(client, url)
    assert large == small
    # 13 + the suspect ground truths count + assignments counted in two parts (generation,
    # screening), so neither joins every sample.
    with django_assert_max_num_queries(15):
        client.get(url)
    with django_assert_max_num_queries(3):
        client.get(reverse("dashboard"))


def test_numbers_on_the_page(client, lead, campaign, labeler, other_labeler, make_sample):
    campaign.labelers.add(labeler, other_labeler)
    campaign.screening_required = True
    campaign.save()
    generation = Generation.objects.create(campaign=campaign, number=0, status="open")
    for reason, ratings in (("found_error", [1, -1]), ("found_error", [-1]), ("solution", [1, 1])):
        assignment = Assignment.objects.create(
            generation=generation, sample=make_sample(2), labeler=labeler, state="in_progress"
        )
        finish(assignment, ratings, reason)
    Assignment.objects.create(
        generation=generation, sample=make_sample(2), labeler=other_labeler, state="in_progress"
    )
    Assignment.objects.create(generation=generation, sample=make_sample(2))
    gold = GoldStandard.objects.create(
        sample=make_sample(2), purpose=QC, ratings=[1, -1], finish_reason="found_error"
    )
    qc = Assignment.objects.create(
        generation=generation, sample=gold.sample, labeler=labeler, kind="qc", state="in_progress"
    )
    finish(qc, [1, 1], "solution")  # misses gold's error: 0% first error, 1 of 2 steps
    ScreeningResult.objects.create(
        campaign=campaign, labeler=other_labeler, status="failed", agreement=0.5, items=4
    )

    data = dashboard.campaign_dashboard(campaign)
    (row,) = data["generations"]
    assert row.counts == {"submitted": 4, "in_progress": 1, "open": 1, "expired": 0}
    assert row.qc == 1 and row.total == 6
    assert [s.width for s in row.segments if s.value] == pytest.approx(
        [400 / 6, 100 / 6, 100 / 6], abs=1e-3
    )
    assert data["labels_24h"] == 4
    assert sum(data["hours"]) == 4 and data["hour_chart"]["counts"] == data["hours"]
    # Each bar is its share of all finished labels: together they fill the track.
    assert data["reasons"] == [("found_error", 2, 50.0), ("solution", 2, 50.0)]
    assert data["reasons_total"] == 4
    rows = {r.username: r for r in data["labelers"]}
    assert rows["labeler"].finished == 4 and rows["labeler"].qc == 1
    assert rows["labeler"].agreement.items == 1
    assert rows["labeler"].first_error_pct == 0
    assert rows["labeler"].step_pct == 50
    assert rows["labeler"].screening_status == "not started"
    assert rows["other"].screening_status == "failed"
    assert any("other" in w and "Failed screening" in w for w in data["warnings"])
    assert any("no screening gold" in w for w in data["warnings"])

    client.force_login(lead)
    html = client.get(reverse("dashboard-campaign", args=[campaign.slug])).content.decode()
    assert 'data-labeler="labeler"' in html
    assert 'data-screening="failed"' in html
    assert '<td class="num" data-state="submitted">4</td>' in html
    assert '<td class="num" data-stat="step">50%</td>' in html


def test_hourly_buckets(campaign, labeler, make_sample):
    now = timezone.now()
    generation = Generation.objects.create(campaign=campaign, number=0, status="open")
    for hours_ago in (0, 0, 5, 30):
        assignment = Assignment.objects.create(
            generation=generation, sample=make_sample(1), labeler=labeler, state="in_progress"
        )
        label = finish(assignment, [1], "solution")
        Label.objects.filter(pk=label.pk).update(finished_at=now - timedelta(hours=hours_ago))
    data = dashboard.campaign_dashboard(campaign, now=now)
    values = data["hours"]
    assert values[-1] == 2 and values[-6] == 1 and sum(values) == 3  # 30 h ago is out
    (row,) = data["labelers"]
    assert row.hourly == values and row.recent == 3 and row.finished == 4


def test_hour_chart_is_data_in_utc_instants():
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    spec = dashboard.hour_chart([start, start + timedelta(hours=1)], [3, 0])
    assert spec["type"] == "hours" and spec["counts"] == [3, 0]
    assert spec["hours"][0] == start.isoformat() and spec["hours"][0].endswith("+00:00")


def test_htmx_refresh_renders_only_the_stats(client, lead, campaign):
    client.force_login(lead)
    url = reverse("dashboard-campaign", args=[campaign.slug])
    html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<div id="stats"')
    assert "<html" not in html


def test_labeler_names_are_escaped(client, lead, campaign):
    campaign.labelers.add(get_user_model().objects.create_user("<b>x</b>"))
    client.force_login(lead)
    html = client.get(reverse("dashboard-campaign", args=[campaign.slug])).content.decode()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_chart_geometry():
    segments = dashboard.stacked([("a", 1), ("b", 3), ("c", 0)])
    assert [(s.x, s.width) for s in segments] == [(0, 25), (25, 75), (100, 0)]
    assert dashboard.stacked([("a", 0)])[0].width == 0
    assert dashboard.sparkline([0, 2]) == "0.00,20.00 100.00,2.00"
    assert dashboard.sparkline([]) == ""


def test_give_ups_and_suspect_ground_truths_are_shown_apart(
    client, lead, campaign, labeler, make_sample
):
    generation = Generation.objects.create(campaign=campaign, number=0, status="open")
    for ratings, reason in (([1], "give_up"), ([1, 1], "solution")):
        gold = GoldStandard.objects.create(
            sample=make_sample(2), purpose=QC, ratings=[1, -1], finish_reason="found_error"
        )
        qc = Assignment.objects.create(
            generation=generation, sample=gold.sample, labeler=labeler, kind="qc",
            state="in_progress",
        )  # fmt: skip
        finish(qc, ratings, reason)
    suspect = make_sample(2).problem
    Problem.objects.filter(pk=suspect.pk).flag_suspect("every sample disagrees")

    client.force_login(lead)
    html = client.get(reverse("dashboard-campaign", args=[campaign.slug])).content.decode()
    row = html.split('data-labeler="labeler"')[1].split("</tr>")[0]
    assert '<td class="num" data-stat="gold-items">2</td>' in row
    assert '<td class="num" data-stat="gave-up">1</td>' in row
    warning = html.split('data-warning="suspect-ground-truth"')[1].split("</p>")[0]
    assert "1 problem with a suspect ground truth" in warning
    assert "ground_truth_status__exact=suspect" in warning
