"""The sample's admin page (#14 item 7): steps rendered as on the task page, model-written
text escaped, and each checkpoint's score beside its step."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotate.models import Checkpoint, Score
from tests.factories import make_sample

pytestmark = pytest.mark.django_db

STEPS = ["We have $x^2 = 4$.", "<script>alert(1)</script> so **x = 2**.", "# Answer\n\n2"]


def test_steps_rendered_with_their_scores(client, lead, campaign):
    sample = make_sample(campaign, STEPS)
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="prm-<1>", path="/m/1")
    # A truncated scoring: the last step has no score.
    Score.objects.create(
        sample=sample, checkpoint=checkpoint, score=0.1, step_scores=[0.912, 0.104]
    )
    client.force_login(lead)
    html = client.get(reverse("admin:annotate_sample_change", args=[sample.pk])).content.decode()
    rows = dict(re.findall(r'<tr data-step="(\d)">(.*?)</tr>', html, re.S))
    assert "$x^2 = 4$" in rows["0"] and 'data-score="0.912"' in rows["0"]
    assert "&lt;script&gt;" in rows["1"] and "<strong>x = 2</strong>" in rows["1"]
    assert 'data-score="0.104"' in rows["1"]
    assert 'data-score="—"' in rows["2"]
    assert "<script>alert" not in html
    assert '<th class="stepwise-score">prm-&lt;1&gt;</th>' in html
    assert "katex/katex.min.js" in html and "js/admin-math.js" in html
