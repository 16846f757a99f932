"""`add_user USERNAME --role labeler|lead --password PW [--campaign SLUG]`.

Creates the account, or updates role and password of an existing one (so it is safe to
re-run). A lead is staff and superuser, so they can configure campaigns in the admin, and
their password must pass Django's password validators.
`--campaign` adds the user to that campaign's labelers.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from annotate.management.command import StepwiseCommand
from annotate.models import Campaign


class Command(StepwiseCommand):
    help = "Create or update a labeler or lead account."
    runtime = (
        "A run takes a few seconds, nearly all of it Django's start-up (4–6 s measured on 2 "
        "shared cores)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="Login name.")
        parser.add_argument(
            "--role", choices=["labeler", "lead"], required=True, help="lead: staff and admin."
        )
        parser.add_argument(
            "--password", required=True, help="Checked by the password validators for leads."
        )
        parser.add_argument(
            "--campaign", action="append", default=[], help="Campaign slug (repeatable)."
        )

    @transaction.atomic
    def handle(self, *args, username: str, role: str, password: str, campaign, **options):
        if not username.strip():
            raise CommandError("USERNAME must not be empty.")
        if not password:
            raise CommandError("--password must not be empty.")
        campaigns = []
        for slug in campaign:
            try:
                campaigns.append(Campaign.objects.get(slug=slug))
            except Campaign.DoesNotExist as error:
                raise CommandError(f"No campaign with slug {slug!r}.") from error
        users = get_user_model()
        user, created = users.objects.get_or_create(username=username)
        lead = role == "lead"
        user.is_staff = lead
        user.is_superuser = lead
        user.is_active = True
        if lead:  # a lead is a superuser: refuse what AUTH_PASSWORD_VALIDATORS refuse
            try:
                validate_password(password, user)
            except ValidationError as error:
                weak = " ".join(error.messages)
                raise CommandError(f"Weak password for a lead: {weak}") from error
        user.set_password(password)
        user.save()
        for each in campaigns:
            each.labelers.add(user)
        where = f" on {', '.join(c.slug for c in campaigns)}" if campaigns else ""
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {role} {username}{where}."))
