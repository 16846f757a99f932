"""Shared fixtures: personas (lead, labeler, other labeler, outsider) and a small campaign."""

import pytest
from django.contrib.auth import get_user_model

from annotate.models import Campaign, Problem, Sample


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs about a second per hash on the CI machine; tests need no real hashing cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def lead(db):
    return get_user_model().objects.create_user(
        "lead", password="lead-password", is_staff=True, is_superuser=True
    )


@pytest.fixture
def labeler(db):
    return get_user_model().objects.create_user("labeler", password="labeler-password")


@pytest.fixture
def other_labeler(db):
    return get_user_model().objects.create_user("other", password="other-password")


@pytest.fixture
def campaign(db):
    return Campaign.objects.create(slug="test-campaign", name="Test campaign", k=2)


@pytest.fixture
def problem(campaign):
    return Problem.objects.create(
        campaign=campaign,
        unique_id="test/algebra/1.json",
        problem="What is $1+1$?",
        ground_truth_answer="2",
    )


@pytest.fixture
def sample(problem):
    return Sample.objects.create(
        campaign=problem.campaign,
        problem=problem,
        external_id="s1",
        steps=["We add.", "So $1+1=2$.\n\n# Answer\n\n2"],
        answer="2",
        is_correct=True,
        steps_hash="0" * 32,
    )
