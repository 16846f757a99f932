"""A lead's mistakes in the campaign admin are explained next to the field, in its language."""

import pytest
from django.urls import reverse

from tests.factories import campaign_change_form


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("wrong_fraction", "1.5", "Wrong fraction must be between 0 and 1."),
        ("qc_rate", "-0.1", "QC rate must be between 0 and 1."),
        ("k", "0", "K must be at least 1."),
        ("overlap", "0", "Overlap must be at least 1."),
        ("screening_pass_mark", "2", "Screening pass mark must be between 0 and 1."),
    ],
)
def test_out_of_range_settings_are_explained_at_the_field(
    client, lead, campaign, field, value, message
):
    client.force_login(lead)
    data = campaign_change_form(client, campaign)
    data[field] = value
    response = client.post(reverse("admin:annotate_campaign_change", args=[campaign.pk]), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors[field] == [message]
    assert "__all__" not in form.errors  # no raw constraint name beside it
    assert "is violated" not in response.content.decode()
