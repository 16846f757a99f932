"""Entry points that are not dead ends: the API root, and error pages in the site's style."""

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error


def test_api_root_leads_to_the_reference(client, lead):
    client.force_login(lead)
    response = client.get("/api/v1/", follow=True)
    assert response.redirect_chain[-1][0].endswith("/api/v1/docs/")
    assert response.status_code == 200


@pytest.mark.parametrize(("path", "status", "advice"), [("/no/such/page/", 404, "home page")])
def test_not_found_page_says_what_to_do(client, labeler, path, status, advice):
    client.force_login(labeler)
    response = client.get(path)
    assert response.status_code == status
    body = response.content.decode()
    assert "stepwise.css" in body and advice in body


def test_forbidden_page_uses_the_site_style(client, labeler):
    client.force_login(labeler)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert "ask your project lead" in response.content.decode()


def test_server_error_page_renders_without_context(db):
    response = server_error(RequestFactory().get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body and "stepwise.css" in body
