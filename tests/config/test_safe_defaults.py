"""Safe defaults (#15 item 10, part): DEBUG off unless asked for, real password validation,
and no weak lead password from the command line."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def bare_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any Django, database, broker or Stepwise variable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "STEPWISE_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **extra)
    return env


def settings_in(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_unset_debug_means_production_and_demands_a_secret_key() -> None:
    result = settings_in(bare_env())
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_unset_debug_with_production_variables_is_debug_off() -> None:
    env = bare_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="example.org")
    result = settings_in(env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "False"


def test_development_opts_in() -> None:
    result = settings_in(bare_env(DJANGO_DEBUG="true"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "True"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "export DJANGO_DEBUG ?= true" in makefile  # `make demo`, `make worker`…


@pytest.mark.parametrize("password", ["12345678", "password", "a", "iloveyou"])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValidationError):
        validate_password(password)


@pytest.mark.django_db
def test_password_like_the_username_is_refused() -> None:
    user = get_user_model()(username="margaret")
    with pytest.raises(ValidationError):
        validate_password("margaret1", user)


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["a", "12345678", "password1"])
def test_add_user_refuses_a_weak_lead_password(password: str) -> None:
    with pytest.raises(CommandError, match="Weak password for a lead"):
        call_command("add_user", "boss", "--role", "lead", "--password", password)
    assert not get_user_model().objects.filter(username="boss").exists()


@pytest.mark.django_db
def test_add_user_keeps_an_existing_lead_when_the_new_password_is_weak() -> None:
    call_command("add_user", "boss", "--role", "lead", "--password", "correct-horse-battery")
    with pytest.raises(CommandError, match="too short"):
        call_command("add_user", "boss", "--role", "lead", "--password", "a")
    assert get_user_model().objects.get(username="boss").check_password("correct-horse-battery")
