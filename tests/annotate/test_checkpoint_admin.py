"""A lead adding a checkpoint in the admin meets the same validation as register_checkpoint."""

import pytest
from django.urls import reverse

from annotate.models import Campaign, Checkpoint
from tests.factories import campaign_change_form
from tests.selector.prm.published import qwen_prm_checkpoint


def add(client, path, **fields):
    data = {"name": "mine", "path": str(path), "adapter": "qwen-prm", "base_model": "", **fields}
    data.setdefault("trained_on_labels", "0")
    return client.post(reverse("admin:annotate_checkpoint_add"), data)


def test_a_published_prm_is_added(client, lead, tmp_path):
    client.force_login(lead)
    response = add(client, qwen_prm_checkpoint(tmp_path / "prm"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Checkpoint.objects.get(name="mine").adapter == "qwen-prm"


def test_missing_head_weights_are_named_next_to_the_path(client, lead, tmp_path):
    client.force_login(lead)
    response = add(client, qwen_prm_checkpoint(tmp_path / "prm", drop=("score.2.weight",)))
    assert response.status_code == 200
    assert "score.2.weight" in " ".join(response.context["adminform"].form.errors["path"])
    assert not Checkpoint.objects.exists()


def _activate_in_admin(client, campaign, checkpoint):
    data = campaign_change_form(client, campaign)
    data["active_checkpoint"] = "" if checkpoint is None else str(checkpoint.pk)
    url = reverse("admin:annotate_campaign_change", args=[campaign.pk])
    return client.post(url, data)


@pytest.mark.django_db
def test_choosing_the_active_checkpoint_in_the_admin_goes_through_its_lifecycle(
    client, lead, campaign
):
    old = Checkpoint.objects.create(campaign=campaign, name="old", path="/m/old")
    new = Checkpoint.objects.create(campaign=campaign, name="new", path="/m/new")
    campaign.activate(old)
    client.force_login(lead)

    response = _activate_in_admin(client, campaign, new)
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db(), old.refresh_from_db(), new.refresh_from_db()
    assert campaign.active_checkpoint == new
    assert (old.status, new.status) == (Checkpoint.Status.READY, Checkpoint.Status.ACTIVE)

    assert _activate_in_admin(client, campaign, None).status_code == 302
    campaign.refresh_from_db(), new.refresh_from_db()
    assert campaign.active_checkpoint is None and new.status == Checkpoint.Status.READY


@pytest.mark.django_db
def test_a_checkpoint_that_cannot_be_active_is_refused_next_to_the_field(client, lead, campaign):
    failed = Checkpoint.objects.create(
        campaign=campaign, name="broken", path="/m/b", status=Checkpoint.Status.FAILED
    )
    other = Checkpoint.objects.create(
        campaign=Campaign.objects.create(slug="elsewhere"), name="theirs", path="/m/t"
    )
    client.force_login(lead)
    for checkpoint, message in ((failed, "This checkpoint is failed"), (other, "of this campaign")):
        response = _activate_in_admin(client, campaign, checkpoint)
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors["active_checkpoint"]
        assert message in errors[0]
    campaign.refresh_from_db()
    assert campaign.active_checkpoint is None
    failed.refresh_from_db()
    assert failed.status == Checkpoint.Status.FAILED
