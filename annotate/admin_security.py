"""Admin pages for accounts and accountability: users with their last login, API tokens
with their expiry and a revoke action, and the read-only audit trail."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from annotate.models import AuditEvent
from config.auth import token_expires_at

User = get_user_model()


class StepwiseUserAdmin(UserAdmin):
    list_display = ["username", "email", "is_staff", "is_active", "last_login", "date_joined"]
    list_filter = [*UserAdmin.list_filter, "last_login"]
    actions = ["revoke_tokens"]

    @admin.action(description="Revoke the selected users' API tokens (their clients get 401)")
    def revoke_tokens(self, request, queryset) -> None:
        count, _ = Token.objects.filter(user__in=queryset).delete()
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


class StepwiseTokenAdmin(TokenAdmin):
    """Deleting a token (its page → Delete) revokes it at once. DRF maps the list's ids to
    users, so bulk actions live on the user list instead (“Revoke … API tokens”)."""

    list_display = ["key", "user", "created", "expires", "last_login"]

    @admin.display(description="Expires")
    def expires(self, obj: TokenProxy) -> str:
        when = token_expires_at(obj)
        return "never" if when is None else f"{when:%Y-%m-%d %H:%M}"

    @admin.display(description="User's last login", ordering="user__last_login")
    def last_login(self, obj: TokenProxy):
        return obj.user.last_login


class AuditEventAdmin(admin.ModelAdmin):
    """The trail is written by the actions themselves; nobody edits or deletes it here."""

    list_display = ["at", "actor_name", "via", "action", "campaign", "target"]
    list_filter = ["action", "via", "campaign"]
    search_fields = ["actor_name", "target"]
    date_hierarchy = "at"
    readonly_fields = ["at", "actor", "actor_name", "via", "action", "campaign", "target", "detail"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for model, model_admin in ((User, StepwiseUserAdmin), (TokenProxy, StepwiseTokenAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
admin.site.register(AuditEvent, AuditEventAdmin)
