"""`add_user USERNAME --role labeler|lead --password PW [--campaign SLUG]`."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_adds_a_labeler_to_a_campaign(campaign, capsys):
    call_command(
        "add_user",
        "ada",
        "--role",
        "labeler",
        "--password",
        "s3cret-pw",
        "--campaign",
        campaign.slug,
    )
    user = get_user_model().objects.get(username="ada")
    assert user.check_password("s3cret-pw")
    assert not user.is_staff and not user.is_superuser
    assert list(campaign.labelers.all()) == [user]
    assert "Created labeler ada on test-campaign." in capsys.readouterr().out


def test_lead_is_staff_and_rerunning_updates(capsys):
    call_command("add_user", "lin", "--role", "labeler", "--password", "first-pw")
    call_command("add_user", "lin", "--role", "lead", "--password", "second-pw")
    user = get_user_model().objects.get(username="lin")
    assert user.is_staff and user.is_superuser
    assert user.check_password("second-pw") and not user.check_password("first-pw")
    assert get_user_model().objects.filter(username="lin").count() == 1
    assert "Updated lead lin." in capsys.readouterr().out


def test_unknown_campaign_writes_nothing():
    with pytest.raises(CommandError, match="No campaign"):
        call_command(
            "add_user", "bo", "--role", "labeler", "--password", "pw-123456", "--campaign", "nope"
        )
    assert not get_user_model().objects.filter(username="bo").exists()
