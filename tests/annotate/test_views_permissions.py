"""Who may do what on the labeler pages: anonymous, the owner, another labeler, a lead.

Plus CSRF, escaping of model-written text, htmx fragments, and read-only finished tasks.
"""

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotate.models import Assignment, GoldStandard, Label
from tests.factories import (
    make_generation,
    make_sample,
    make_task,
    stored_ratings,
)

pytestmark = pytest.mark.django_db

POST_ACTIONS = {
    "task-rate": {"step": "0", "rating": "1"},
    "task-flag": {"step": "0"},
    "task-undo": {},
    "task-finish": {"reason": "give_up"},
    "task-heartbeat": {"elapsed_ms": "1000"},
}


@pytest.fixture
def owned(labeler, campaign):
    assignment, _ = make_task(labeler, campaign)
    return assignment


@pytest.fixture
def personas(labeler, other_labeler, lead):
    def client_for(name):
        client = Client()
        user = {"labeler": labeler, "other": other_labeler, "lead": lead}.get(name)
        if user is not None:
            client.force_login(user)
        return client

    return client_for


def _rating_buttons(html: str) -> tuple[int, int]:
    """(all rating buttons, enabled ones) in a rendered page."""
    buttons = re.findall(r"<button[^>]*data-rating=[^>]*>", html)
    return len(buttons), sum(" disabled" not in b for b in buttons)


def _login_redirect(response, path):
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={path}"


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["labeler", "other", "lead"])
def test_home_for_signed_in_users(personas, owned, name):
    response = personas(name).get(reverse("labeler-home"))
    assert response.status_code == 200
    # A lead who labels nowhere gets their campaigns (#14 item 7); labelers their queue.
    assert (b'data-action="next"' in response.content) == (name != "lead")
    assert (b'data-home="lead"' in response.content) == (name == "lead")
    # Only leads are shown the way to the staff pages.
    assert (b'href="/dashboard/"' in response.content) == (name == "lead")


def test_anonymous_is_sent_to_login_everywhere(personas, owned):
    client = personas("anonymous")
    for url in (reverse("labeler-home"), reverse("labeling-next"), f"/tasks/{owned.pk}/"):
        _login_redirect(client.get(url), url)
    for name, data in POST_ACTIONS.items():
        url = reverse(name, args=[owned.pk])
        _login_redirect(client.post(url, data), url)
    assert stored_ratings(Label.objects.get(assignment=owned)) == {}


def test_anonymous_htmx_post_redirects_the_whole_page(personas, owned):
    url = reverse("task-rate", args=[owned.pk])
    page = reverse("task", args=[owned.pk])
    response = personas("anonymous").post(
        url,
        POST_ACTIONS["task-rate"],
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next={page}"


def test_lead_reads_an_unclaimed_slot_without_creating_a_label(personas, campaign):
    slot = Assignment.objects.create(
        generation=make_generation(campaign), sample=make_sample(campaign)
    )
    response = personas("lead").get(reverse("task", args=[slot.pk]))
    assert response.status_code == 200
    assert b"Read-only view of an unclaimed task" in response.content
    assert _rating_buttons(response.content.decode()) == (12, 0)
    assert not Label.objects.filter(assignment=slot).exists()
    assert personas("labeler").get(reverse("task", args=[slot.pk])).status_code == 404


def test_task_page_matrix(personas, owned):
    url = reverse("task", args=[owned.pk])
    own = personas("labeler").get(url)
    assert own.status_code == 200
    assert own.content.count(b"data-rating=") == 3 * 4
    assert b'data-action="give_up"' in own.content
    assert personas("other").get(url).status_code == 404
    lead = personas("lead").get(url)
    assert lead.status_code == 200  # leads may read any task ...
    assert b"Read-only view" in lead.content
    assert b'data-action="give_up"' not in lead.content  # ... but not act on it
    assert _rating_buttons(lead.content.decode()) == (12, 0)
    assert _rating_buttons(own.content.decode()) == (12, 3)  # the current step's three


@pytest.mark.parametrize("name", list(POST_ACTIONS))
@pytest.mark.parametrize("persona", ["other", "lead"])
def test_others_cannot_act_on_a_labelers_task(personas, owned, name, persona):
    response = personas(persona).post(reverse(name, args=[owned.pk]), POST_ACTIONS[name])
    assert response.status_code == 404
    label = Label.objects.get(assignment=owned)
    assert stored_ratings(label) == {} and label.finish_reason is None
    assert label.total_time_ms == 0


@pytest.mark.parametrize("name", list(POST_ACTIONS))
def test_owner_actions_save_and_redirect_back(personas, owned, name):
    client = personas("labeler")
    if name == "task-undo":
        Label.objects.get(assignment=owned).rate(0, 1)
    response = client.post(reverse(name, args=[owned.pk]), POST_ACTIONS[name])
    label = Label.objects.get(assignment=owned)
    if name == "task-heartbeat":
        assert response.status_code == 204
        assert label.total_time_ms == 1000
        return
    assert response.status_code == 302
    assert response["Location"] == reverse("task", args=[owned.pk])
    expected = {
        "task-rate": {0: (1, False)},
        "task-flag": {0: (None, True)},
        "task-undo": {},
        "task-finish": {},
    }[name]
    assert stored_ratings(label) == expected
    assert (label.finish_reason == "give_up") == (name == "task-finish")


@pytest.mark.parametrize("name", list(POST_ACTIONS))
def test_actions_are_post_only(personas, owned, name):
    assert personas("labeler").get(reverse(name, args=[owned.pk])).status_code == 405


def test_next_matrix(personas, owned, campaign):
    assert personas("labeler").get(reverse("labeling-next")).url == f"/tasks/{owned.pk}/"
    for name in ("other", "lead"):  # on no campaign: nothing to hand out
        response = personas(name).get(reverse("labeling-next"))
        assert response.status_code == 200
        assert b"All caught up" in response.content
        assert b"not on any campaign" in response.content
    assert Assignment.objects.filter(labeler__isnull=False).count() == 1


# --- htmx, CSRF, escaping, read-only -------------------------------------------------------


def test_htmx_action_returns_the_task_fragment_from_the_database(personas, owned):
    response = personas("labeler").post(
        reverse("task-rate", args=[owned.pk]),
        {"step": "0", "rating": "1", "elapsed_ms": "1500"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="task"')
    assert "<html" not in html
    assert 'data-rating="1" aria-pressed="true"' in html
    assert html.count('aria-pressed="true"') == 1
    label = Label.objects.get(assignment=owned)
    assert stored_ratings(label) == {0: (1, False)}
    assert label.total_time_ms == 1500


def test_rule_violations_answer_409_with_the_message(personas, owned):
    response = personas("labeler").post(
        reverse("task-rate", args=[owned.pk]),
        {"step": "2", "rating": "1", "elapsed_ms": "700"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert "Rate step 1 first." in response.content.decode()
    label = Label.objects.get(assignment=owned)
    assert stored_ratings(label) == {}
    assert label.total_time_ms == 700  # the active time still counts


def test_clearing_later_ratings_is_announced(personas, owned):
    label = Label.objects.get(assignment=owned)
    for step in range(3):
        label.rate(step, 1)
    response = personas("labeler").post(
        reverse("task-rate", args=[owned.pk]), {"step": "0", "rating": "-1"}, HTTP_HX_REQUEST="true"
    )
    assert "later ratings (steps 2–3) were cleared" in response.content.decode()
    assert stored_ratings(label) == {0: (-1, False)}


def test_finished_tasks_are_read_only(personas, owned):
    label = Label.objects.get(assignment=owned)
    label.rate(0, -1)
    client = personas("labeler")
    page = client.get(reverse("task", args=[owned.pk])).content.decode()
    assert _rating_buttons(page) == (12, 0)
    response = client.post(
        reverse("task-rate", args=[owned.pk]), {"step": "0", "rating": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert stored_ratings(label) == {0: (-1, False)}


def test_csrf_is_enforced(labeler, owned):
    client = Client(enforce_csrf_checks=True)
    client.force_login(labeler)
    url = reverse("task-rate", args=[owned.pk])
    assert client.post(url, {"step": "0", "rating": "1"}).status_code == 403
    assert stored_ratings(Label.objects.get(assignment=owned)) == {}
    page = client.get(reverse("task", args=[owned.pk]))
    token = str(page.context["csrf_token"])
    assert f'"X-CSRFToken": "{token}"' in page.content.decode()  # htmx sends it as a header
    response = client.post(url, {"step": "0", "rating": "1"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302
    assert stored_ratings(Label.objects.get(assignment=owned)) == {0: (1, False)}


def test_model_written_text_is_escaped(personas, labeler, campaign):
    evil = ['<script>alert("x")</script>', '<img src=x onerror="alert(1)">', "fine"]
    assignment, _ = make_task(labeler, campaign, steps=evil)
    problem = assignment.sample.problem
    problem.problem = "<b>bold?</b>"
    problem.ground_truth_answer = '"><svg onload=alert(2)>'
    problem.save()
    campaign.guidelines = "<iframe src=x></iframe>"
    campaign.save()
    client = personas("labeler")
    page = client.get(reverse("task", args=[assignment.pk])).content.decode()
    fragment = client.post(
        reverse("task-flag", args=[assignment.pk]), {"step": "0"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    for html in (page, fragment):
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    for raw in ("<b>bold?</b>", "<svg onload", "<iframe"):
        assert raw not in page
    assert "&lt;iframe src=x&gt;" in page


def test_home_counts_and_agreement(personas, labeler, campaign):
    client = personas("labeler")
    home = client.get(reverse("labeler-home"))
    assert home.context["agreement"] == "—"
    done, _ = make_task(labeler, campaign)
    Label.objects.get(assignment=done).finish("give_up")
    make_task(labeler, campaign)  # in progress
    generation = make_generation(campaign)
    Assignment.objects.create(generation=generation, sample=make_sample(campaign))
    # A QC item answered like its gold: agreement 100%.
    gold = make_sample(campaign, steps=["a", "b"])
    GoldStandard.objects.create(
        sample=gold, purpose="qc", ratings=[1, -1], finish_reason="found_error"
    )
    qc = Assignment.objects.create(
        generation=generation, sample=gold, labeler=labeler, kind="qc", state="in_progress"
    )
    qc_label = Label.for_assignment(qc)
    qc_label.rate(0, 1)
    qc_label.rate(1, -1)

    home = client.get(reverse("labeler-home"))
    assert (home.context["done"], home.context["in_progress"]) == (2, 1)
    assert home.context["waiting"] == 1
    assert home.context["agreement"] == "100%"
    assert b'data-stat="done">2<' in home.content


def test_login_and_logout_pages(client, labeler):
    page = client.get(reverse("login"))
    assert b'name="username"' in page.content and b'name="password"' in page.content
    response = client.post(
        reverse("login"), {"username": "labeler", "password": "labeler-password"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("labeler-home")
    assert client.get(reverse("labeler-home")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("labeler-home")).status_code == 302
    bad = client.post(reverse("login"), {"username": "labeler", "password": "wrong"})
    assert bad.status_code == 200 and b"didn't match" in bad.content


def test_an_expired_lease_shows_read_only_with_the_ratings_kept(personas, owned):
    Label.objects.get(assignment=owned).rate(0, 1)
    Assignment.objects.filter(pk=owned.pk).update(state=Assignment.State.EXPIRED)
    client = personas("labeler")
    page = client.get(reverse("task", args=[owned.pk])).content.decode()
    assert "lease on this task expired" in page
    assert _rating_buttons(page) == (12, 0)
    assert 'data-rating="1" aria-pressed="true"' in page
    response = client.post(
        reverse("task-rate", args=[owned.pk]), {"step": "1", "rating": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "went back to the queue" in response.content.decode()
    assert stored_ratings(Label.objects.get(assignment=owned)) == {0: (1, False)}
