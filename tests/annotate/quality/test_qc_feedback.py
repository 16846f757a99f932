"""Quality control that teaches: a labeler sees each scored QC item, their step labels beside
gold (their own only, model text escaped), and give-ups apart from disagreements; the demo's
gold set mixes correct and erroneous solutions."""

import json

import pytest
from django.urls import reverse

from annotate import quality
from annotate.models import Campaign, GoldStandard
from tests.factories import DATA_DIR, finish
from workers.management.commands import demo

QC = GoldStandard.Purpose.QUALITY_CONTROL

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(campaign, labeler, other_labeler, opened_generation, make_gold):
    """The labeler's three QC items (agreed, disagreed, given up) and another's one."""
    campaign.qc_rate = 1.0
    make_gold(QC, [1, 0, -1], "found_error")
    make_gold(QC, [1, 1, 1], "solution")
    hostile = make_gold(QC, [1, -1], "found_error")
    hostile.sample.steps = ["<script>alert(1)</script> $x$", "<img src=x onerror=alert(2)>", "c"]
    hostile.sample.save()
    items = [quality.maybe_qc_item(labeler, campaign) for _ in range(3)]
    finish(items[0], [1, 1, -1], "found_error")  # agrees
    finish(items[1], [1, -1], "found_error")  # says error, gold: none
    finish(items[2], [1], "give_up")  # gives up
    theirs = quality.maybe_qc_item(other_labeler, campaign)
    finish(theirs, [-1], "found_error")
    return items, theirs


def as_user(client, user):
    client.force_login(user)
    return client


def test_the_labeler_sees_each_scored_item_beside_gold(client, labeler, scored):
    items, theirs = scored
    page = as_user(client, labeler).get(reverse("qc-feedback"))
    assert page.status_code == 200
    shown = {item.label.assignment_id: item for item in page.context["items"]}
    assert set(shown) == {a.pk for a in items}  # never the other labeler's
    assert [shown[a.pk].verdict for a in items] == ["agree", "disagree", "gave_up"]
    disagreed = shown[items[1].pk].steps
    assert [(s.mine_text, s.gold_text) for s in disagreed] == [
        ("+1", "+1"),
        ("−1", "+1"),
        ("—", "+1"),
    ]
    html = page.content.decode()
    assert f'data-qc-item="{theirs.label.pk}"' not in html
    assert 'data-verdict="gave_up"' in html and "Given up (not a disagreement)" in html
    assert 'data-mine="−1" data-gold="+1"' not in html  # each rating in its own cell
    assert '<td data-mine="−1">−1</td>\n          <td data-gold="+1">+1</td>' in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "1 of 3 agreed, 1 disagreed, 1 given up" in html


def test_home_reports_give_ups_apart_and_links_the_items(client, labeler, scored):
    home = as_user(client, labeler).get(reverse("labeler-home"))
    assert home.context["agreement"] == "33%"
    assert home.context["agreement_detail"] == "1 of 3 agreed, 1 disagreed, 1 given up"
    assert reverse("qc-feedback").encode() in home.content


def test_each_labeler_reads_only_their_own_items(client, other_labeler, scored):
    _, theirs = scored
    assert client.get(reverse("qc-feedback")).status_code == 302  # to the login page
    page = as_user(client, other_labeler).get(reverse("qc-feedback"))
    assert [item.label.assignment_id for item in page.context["items"]] == [theirs.pk]


def test_demo_gold_mixes_correct_and_erroneous_solutions():
    math500 = {}
    for line in (DATA_DIR / "math500.jsonl").open():
        record = json.loads(line)
        math500[record["problem"].strip()] = record
    items = [json.loads(line) for line in (DATA_DIR / "processbench_math.jsonl").open()]
    picked = demo.balanced_gold(items, math500, demo.QC_ITEMS)
    assert len(picked) == 20
    assert sum(item["label"] < 0 for item in picked) == 10
    assert [item["label"] < 0 for item in picked[:4]] == [False, True, False, True]


def test_demo_builds_ten_correct_and_ten_erroneous_gold_items():
    campaign = Campaign.objects.create(slug="demo-gold", name="gold")
    demo.Command()._import_gold(campaign)
    reasons = list(
        GoldStandard.objects.filter(sample__campaign=campaign).values_list(
            "finish_reason", flat=True
        )
    )
    assert sorted(reasons) == ["found_error"] * 10 + ["solution"] * 10
